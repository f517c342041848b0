"""The window with the models people bring: pretrained weights imported while a project waits for them (Start
enables), and a timm model's layers, blocks and head in the checklist."""

from __future__ import annotations

from engine.model import zoo
from tests.published import publish, weights_file


def reason_keys(window) -> set[str]:
    return {e.key for e in window.reasons(wait_for_scan=False)}


def test_importing_the_missing_pretrained_file_lets_the_project_start(window, qtbot, project_factory, monkeypatch,
                                                                      tmp_path):
    path, digest = weights_file(tmp_path)
    publish(monkeypatch, "squeezenet1_1", "https://download.example.org/models", f"squeezenet1_1-{digest[:8]}.pth")
    window.set_project(project_factory(model__arch="squeezenet1_1", model__weights="pretrained"))
    qtbot.waitUntil(lambda: window.data_panel.sources is not None, timeout=30000)
    window.recheck()
    assert "model.weights" in reason_keys(window)
    with qtbot.waitSignal(window.model_panel.weights_arrived, timeout=30000):
        window.model_panel.fetcher.start_import(str(path))
    qtbot.waitUntil(lambda: not window.model_panel.fetcher.is_busy(), timeout=10000)
    assert "model.weights" not in reason_keys(window) and window.start_action.isEnabled()
    assert zoo.arch_info("squeezenet1_1").weights_cached


def test_a_timm_model_in_the_checklist(window, project_factory):
    window.set_project(project_factory(model__arch="timm:test_convnext.r160_in1k", head__kind="mlp",
                                       head__hidden=[8], freeze__preset="last_blocks"))
    checklist = window.freeze_panel.checklist
    assert checklist.blocks == ["stem", "stages.0", "stages.1", "stages.2", "stages.3"]
    assert checklist.head_paths == ("head.fc",)
    assert window.model_panel.show_timm.isChecked()  # its row is among timm's, listed with the project
    assert "model.arch" not in reason_keys(window)
