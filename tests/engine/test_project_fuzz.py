"""Property tests: any TOML text or value either loads or raises the project's own ProjectError."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import project as proj
from engine.errors import ProjectError

KEYS = list(proj.KEYS)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
toml_values = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=20), st.lists(st.integers(min_value=-5, max_value=10**6), max_size=4),
    st.lists(st.text(max_size=6), max_size=3),
)


def _loads_or_project_error(text: str) -> None:
    try:
        project = proj.loads(text)
    except ProjectError as exc:
        assert str(exc)
        return
    # Whatever loaded writes back and reads again to the same project.
    assert proj.loads(proj.dumps(project)) == project


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text):
    _loads_or_project_error(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYS), toml_values)
def test_any_value_for_any_key(key, value):
    section, _, attr = key.rpartition(".")
    line = f"{attr} = {proj._toml_value(value)}"
    text = f"[{section}]\n{line}\n" if section else f"{line}\n"
    _loads_or_project_error(text)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYS + ["train.nope", "bogus", "x.y"]), scalars)
def test_set_accepts_or_names_the_key(key, value):
    project = proj.Project()
    try:
        project.set(key, value)
    except ProjectError as exc:
        assert exc.key.startswith(key.split("[")[0].rpartition(".")[0] or key.split(".")[0])
    else:
        assert project.get(key) == value or isinstance(value, int)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=3))
def test_overrides(assignments):
    try:
        proj.apply_overrides(proj.Project(), assignments)
    except ProjectError as exc:
        assert str(exc)
