from gui.main_window import MainWindow


def test_window_opens_with_title(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle().startswith("Thaw")
