import pytest

from tests.conftest import load_script


def test_trace_matches_the_table():
    script = load_script("autodiff_trace")
    tape, bars = script.trace(0.3, 0.5, 0.1)
    assert [tape.values[k] for k in ("v1", "v2", "v3", "v4")] == pytest.approx([0.15, 0.25, 4.0, 4.3])
    assert (bars["x"], bars["w"], bars["b"]) == pytest.approx((-7.0, -4.8, -16.0))


@pytest.mark.parametrize("x,w,b", [(0.3, 0.5, 0.1), (-1.2, 2.0, 0.7), (2.0, -0.3, 5.0)])
def test_trace_matches_torch_autograd(x, w, b):
    script = load_script("autodiff_trace")
    _, bars = script.trace(x, w, b)
    ref = script.torch_gradients(x, w, b)
    assert [bars[k] for k in "xwb"] == pytest.approx([ref[k] for k in "xwb"], rel=1e-12)


def test_script_prints_table(capsys):
    load_script("autodiff_trace").main([])
    out = capsys.readouterr().out
    assert "| v4 | x + v3 | 4.3 |" in out and "| x_bar | -7 |" in out and "MISMATCH" not in out
