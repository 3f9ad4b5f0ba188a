"""Small few-shot datasets written in their real on-disk formats, for loading without a download."""
from pathlib import Path

import numpy as np
from PIL import Image

# Omniglot's alphabets and how many characters each has, as torchvision's zips unpack them.
BACKGROUND = {
    "Alphabet_of_the_Magi": 20, "Anglo-Saxon_Futhorc": 29, "Arcadian": 26, "Armenian": 41,
    "Asomtavruli_(Georgian)": 40, "Balinese": 24, "Bengali": 46, "Blackfoot_(Canadian_Aboriginal_Syllabics)": 14,
    "Braille": 26, "Burmese_(Myanmar)": 34, "Cyrillic": 33, "Early_Aramaic": 22, "Futurama": 26, "Grantha": 43,
    "Greek": 24, "Gujarati": 48, "Hebrew": 22, "Inuktitut_(Canadian_Aboriginal_Syllabics)": 16,
    "Japanese_(hiragana)": 52, "Japanese_(katakana)": 47, "Korean": 40, "Latin": 26, "Malay_(Jawi_-_Arabic)": 40,
    "Mkhedruli_(Georgian)": 41, "N_Ko": 33, "Ojibwe_(Canadian_Aboriginal_Syllabics)": 14, "Sanskrit": 42,
    "Syriac_(Estrangelo)": 23, "Tagalog": 17, "Tifinagh": 55,
}  # fmt: skip
EVALUATION = {
    "Angelic": 20, "Atemayar_Qelisayer": 26, "Atlantean": 26, "Aurek-Besh": 26, "Avesta": 26, "Ge_ez": 26,
    "Glagolitic": 45, "Gurmukhi": 45, "Kannada": 41, "Keble": 26, "Malayalam": 47, "Manipuri": 40, "Mongolian": 30,
    "Old_Church_Slavonic_(Cyrillic)": 45, "Oriya": 46, "Sylheti": 28, "Syriac_(Serto)": 23, "Tengwar": 25,
    "Tibetan": 42, "ULOG": 26,
}  # fmt: skip
VINYALS_VAL = {"Armenian", "Bengali", "Early_Aramaic", "Hebrew", "Mkhedruli_(Georgian)"}


def in_vinyals_test(alphabet: str, character: int) -> bool:
    """Vinyals et al.'s meta-test characters: evaluation's, from Gurmukhi's 42nd on."""
    if alphabet not in EVALUATION:
        return False
    return alphabet > "Gurmukhi" or (alphabet == "Gurmukhi" and character >= 42)


def write_omniglot(root: Path, drawings: int = 2) -> None:
    """omniglot-py/images_{background,evaluation}/<alphabet>/characterNN/*.png: 8×8 black-on-white 1-bit PNGs.

    Pixel (0, 0) is ink only for meta-test characters and pixel (0, 1) only for meta-val ones, so the split
    each character landed in can be read off its images; the rest is random ink.
    """
    rng = np.random.default_rng(0)
    for folder, alphabets in (("images_background", BACKGROUND), ("images_evaluation", EVALUATION)):
        for alphabet, count in alphabets.items():
            for character in range(1, count + 1):
                path = root / "omniglot-py" / folder / alphabet / f"character{character:02d}"
                path.mkdir(parents=True)
                for drawing in range(drawings):
                    white = rng.random((8, 8)) < 0.7
                    white[0, 0] = not in_vinyals_test(alphabet, character)
                    white[0, 1] = alphabet not in VINYALS_VAL
                    Image.fromarray(white).save(path / f"{character:04d}_{drawing + 1:02d}.png")


def write_miniimagenet(root: Path, per_class: int = 2) -> None:
    """<root>/{train,val,test}/<wnid>/*.jpg with 64/16/20 classes of tiny 10×12 JPEGs."""
    rng = np.random.default_rng(0)
    wnid = 0
    for split, count in (("train", 64), ("val", 16), ("test", 20)):
        for _ in range(count):
            folder = root / split / f"n{wnid:08d}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(10, 12, 3)).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"n{wnid:08d}{i:08d}.jpg")
            wnid += 1
