import pytest

from numpy_dlra.data.fetch import atomic_copy, atomic_write_bytes


def test_atomic_write_replaces_or_leaves_the_old_file(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write_bytes(p, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(p, "not bytes")  # fails mid-write
    assert p.read_bytes() == b"old" and [q.name for q in tmp_path.iterdir()] == ["f.bin"]
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and oct(p.stat().st_mode & 0o777) == "0o644"


def test_atomic_copy_of_a_missing_source_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", tmp_path / "out" / "dst")
    assert list((tmp_path / "out").iterdir()) == []
