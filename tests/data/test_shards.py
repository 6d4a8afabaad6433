import multiprocessing

from ecgdist.files import atomic_write_text


def write_many(args):
    path, writer = args
    for i in range(200):
        atomic_write_text(path, f"writer {writer} version {i}\n" * 100)
    return writer


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    # Job-array tasks write recipe.json and manifest.json at the same moment; with a shared
    # temporary name one task's rename stole the other's file (seen in a SLURM array).
    path = tmp_path / "manifest.json"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        assert sorted(pool.map(write_many, [(path, w) for w in range(4)])) == [0, 1, 2, 3]
    lines = path.read_text().splitlines()
    assert len(lines) == 100 and len(set(lines)) == 1  # one writer's whole text, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporaries left
