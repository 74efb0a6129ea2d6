import pickle
from dataclasses import dataclass

import pytest

from mailoauth.secret import MASK, Secret


def test_every_text_form_is_masked():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s)
    assert str(s) == MASK
    assert f"{s}" == MASK
    assert f"{s!r}" == f"Secret({MASK!r})"
    assert "%s" % s == MASK  # noqa: UP031


def test_reveal_gives_the_value():
    assert Secret("hunter2").reveal() == "hunter2"


def test_secret_inside_a_dataclass_repr_is_masked():
    @dataclass
    class Holder:
        token: Secret

    assert "hunter2" not in repr(Holder(Secret("hunter2")))


def test_equality_compares_values():
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"


def test_secrets_refuse_to_be_pickled():
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(Secret("hunter2"))


def test_only_text_is_accepted():
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
