"""Where a project's ComfyUI looks for models: the reader of ``extra_model_paths.yaml``.

Real files on disk: the store's own section as comfymanager writes it, an adopted install's
sections (relative and absolute base paths, ``|`` blocks, quotes, comments), and fuzzed text,
which may make a model look missing but never raises.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfymanager.core.models.search_paths import model_present, read_model_roots
from comfymanager.core.models.store import write_extra_model_paths


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    return path


def test_the_store_section_we_write_reads_back(tmp_path: Path) -> None:
    store = tmp_path / "store"
    yaml = write_extra_model_paths(store, tmp_path / "extra_model_paths.yaml")
    roots = read_model_roots(yaml)
    assert roots["checkpoints"] == [store.resolve() / "checkpoints"]
    # a key with legacy folders is a | block: both read, under the canonical key
    assert store.resolve() / "unet" in roots["diffusion_models"]
    assert store.resolve() / "diffusion_models" in roots["diffusion_models"]


def test_an_adopted_install_is_found_where_it_is(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _touch(home / "shared" / "loras" / "style.safetensors")
    _touch(home / "more" / "loras" / "sub" / "b.safetensors")
    _touch(home / "ComfyUI" / "models" / "unet" / "old.safetensors")
    yaml = tmp_path / "extra_model_paths.yaml"
    yaml.write_text(
        "# mine\n"
        "adopted_1_mine:\n"
        f'  base_path: "{home}"   \n'
        "  loras: |\n"
        "    shared/loras\n"
        "    more/loras  \n"
        "  checkpoints: 'shared/ckpt' # a comment\n"
        "relative:\n"
        "  base_path: rel\n"
        "  vae: vae\n",
        encoding="utf-8",
    )
    roots = read_model_roots(yaml)
    assert roots["loras"] == [home / "shared" / "loras", home / "more" / "loras"]
    assert roots["checkpoints"] == [home / "shared" / "ckpt"]
    assert roots["vae"] == [tmp_path / "rel" / "vae"]
    store = tmp_path / "store"
    assert model_present(store, "loras", "style.safetensors", roots=roots)
    assert model_present(store, "loras", "sub/b.safetensors", roots=roots)
    assert not model_present(store, "loras", "../loras/style.safetensors", roots=roots)
    assert not model_present(store, "checkpoints", "style.safetensors", roots=roots)
    # ComfyUI's own models folder, under a legacy name
    comfyui = home / "ComfyUI"
    assert model_present(store, "diffusion_models", "old.safetensors", comfyui=comfyui)
    assert not model_present(store, "diffusion_models", "old.safetensors")


def test_no_file_or_an_unreadable_one_gives_nothing(tmp_path: Path) -> None:
    assert read_model_roots(tmp_path / "missing.yaml") == {}
    (tmp_path / "dir.yaml").mkdir()
    assert read_model_roots(tmp_path / "dir.yaml") == {}


LINE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "a:",
            "  base_path: x",
            "  loras: |",
            "    p",
            '  vae: "unclosed',
            "  k: 'q",
            "|",
            "  base_path: ~nobody-here/x",
            "  vae: ~nobody/v",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE, max_size=30))
def test_any_text_is_read_without_an_error(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    yaml = folder / "extra_model_paths.yaml"
    yaml.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    roots = read_model_roots(yaml)
    for key, paths in roots.items():
        assert isinstance(key, str) and all(p.is_absolute() for p in paths)
        model_present(folder / "store", key or "x", "m.safetensors", roots=roots)
