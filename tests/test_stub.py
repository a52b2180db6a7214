"""python/nncore/_core.pyi against the compiled module it describes: every public name, class
member and parameter (names, order, defaults) and which properties can be set, both ways. The
stub is written by hand, so without this it drifts (two bound properties were once missing)."""

import ast
import re
from pathlib import Path

import pytest

from nncore import _core

STUB = Path(__file__).parent.parent / "python" / "nncore" / "_core.pyi"
# Bases that exist in the stub only, to write the two precisions' classes once.
STUB_BASES = {"_Network": ("Network64", "Network32"), "_Optimizer": ("Optimizer64", "Optimizer32"),
              "_CsrMatrix": ("CsrMatrix64", "CsrMatrix32")}


def _stub():
    """{name: node} of the stub's module level, classes as {member: node} with their bases."""
    tree = ast.parse(STUB.read_text())
    names, classes = {}, {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign):
            names[node.target.id] = node
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = node
        elif isinstance(node, ast.ClassDef):
            members = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    members[item.name] = item
                elif isinstance(item, ast.AnnAssign):
                    members[item.target.id] = item
            classes[node.name] = (members, [b.id for b in node.bases])
    return names, classes


def _members(cls_name, classes):
    """A stub class's members, its stub-only bases' included."""
    members, bases = classes[cls_name]
    out = {}
    for base in bases:
        if base in classes:
            out.update(_members(base, classes))
    out.update(members)
    return out


def _split_top_level(text):
    parts, depth, current, quote = [], 0, "", None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _bound_parameters(function):
    """[(name, default text or None)] from pybind11's signature line, `self` left out."""
    first = function.__doc__.strip().splitlines()[0]
    match = re.match(r"^\w+\((.*)\) -> .*$", first)
    assert match, f"no signature in {first!r}"
    params = []
    for part in _split_top_level(match.group(1)):
        name, _, rest = part.partition(":")
        default = rest.partition("=")[2].strip() or None if "=" in rest else None
        if name.strip() != "self":
            params.append((name.strip(), default))
    return params


def _stub_parameters(node):
    args = node.args.args
    defaults = [None] * (len(args) - len(node.args.defaults)) + list(node.args.defaults)
    return [(a.arg, None if d is None else ast.literal_eval(d))
            for a, d in zip(args, defaults) if a.arg != "self"]


def _same_default(stub_value, bound_text):
    if stub_value is None and bound_text is None:
        return True
    if stub_value is None or bound_text is None:
        return False
    try:
        return ast.literal_eval(bound_text) == stub_value
    except (ValueError, SyntaxError):
        return bound_text == repr(stub_value)


def _check_function(where, function, node):
    bound, stub = _bound_parameters(function), _stub_parameters(node)
    assert [n for n, _ in bound] == [n for n, _ in stub], f"{where}: parameters differ"
    for (name, bound_default), (_, stub_default) in zip(bound, stub):
        assert _same_default(stub_default, bound_default), \
            f"{where}({name}): default {bound_default} bound, {stub_default!r} in the stub"


def test_every_public_name_of_the_module_is_in_the_stub_and_back():
    names, classes = _stub()
    bound = {n for n in dir(_core) if not n.startswith("_")}
    stubbed = (set(names) | set(classes)) - set(STUB_BASES)
    assert bound - stubbed == set(), "bound but not in _core.pyi"
    assert stubbed - bound == set(), "in _core.pyi but not bound"


def test_module_functions_match_their_stubs():
    names, _ = _stub()
    for name, node in names.items():
        if isinstance(node, ast.FunctionDef):
            _check_function(name, getattr(_core, name), node)


@pytest.mark.parametrize("cls_name", sorted(n for n in dir(_core) if isinstance(
    getattr(_core, n), type)))
def test_class_members_parameters_and_setters_match(cls_name):
    _, classes = _stub()
    cls = getattr(_core, cls_name)
    stub = _members(cls_name, classes)
    bound = {n for n in cls.__dict__ if not n.startswith("_") or n == "__init__"}
    assert bound - set(stub) == set(), f"{cls_name}: bound but not in _core.pyi"
    assert set(stub) - bound == set(), f"{cls_name}: in _core.pyi but not bound"
    for name, node in stub.items():
        member = cls.__dict__[name]
        where = f"{cls_name}.{name}"
        if isinstance(member, property):
            settable = member.fset is not None
            if isinstance(node, ast.AnnAssign):
                assert settable, f"{where} is read-only: a @property in the stub"
            else:
                assert not settable, f"{where} can be set: an annotation in the stub"
                assert any(isinstance(d, ast.Name) and d.id == "property"
                           for d in node.decorator_list), f"{where} is a property"
        else:
            assert isinstance(node, ast.FunctionDef), f"{where} is a method"
            _check_function(where, member, node)


def test_the_check_finds_drift():
    """Deleting a member from the stub, or a default, is caught (the checks above can fail)."""
    _, classes = _stub()
    members = _members("Network64", classes)
    node = members["predict"]
    bound = _core.Network64.predict
    _check_function("predict", bound, node)
    node.args.defaults = node.args.defaults[:-1]
    with pytest.raises(AssertionError, match="default"):
        _check_function("predict", bound, node)
    assert "alpha" in members and "alpha" in _core.Network64.__dict__
