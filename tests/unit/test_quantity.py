"""rbg.quantity: Kubernetes' quantity grammar, exact values, and None (never an exception) for anything else.

Expected values are literals or built from integers and fractions.Fraction here, not with the decimal
arithmetic quantity() uses."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rbg.coordination.resources import node_info, pod_requests
from rbg.quantity import quantity

# every suffix of the grammar and its multiplier, written out
MULTIPLIERS: dict[str, Fraction] = {
    "Ki": Fraction(1024),
    "Mi": Fraction(1_048_576),
    "Gi": Fraction(1_073_741_824),
    "Ti": Fraction(1_099_511_627_776),
    "Pi": Fraction(1_125_899_906_842_624),
    "Ei": Fraction(1_152_921_504_606_846_976),
    "n": Fraction(1, 1_000_000_000),
    "u": Fraction(1, 1_000_000),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(1000),
    "M": Fraction(1_000_000),
    "G": Fraction(1_000_000_000),
    "T": Fraction(1_000_000_000_000),
    "P": Fraction(1_000_000_000_000_000),
    "E": Fraction(1_000_000_000_000_000_000),
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2E", Fraction(2_000_000_000_000_000_000)),
        ("1E", Fraction(1_000_000_000_000_000_000)),
        ("1.5E", Fraction(1_500_000_000_000_000_000)),
        ("1Ei", Fraction(1_152_921_504_606_846_976)),
        ("3Ei", Fraction(3_458_764_513_820_540_928)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("1E+3", Fraction(1000)),
        ("1e-3", Fraction(1, 1000)),
        ("2.5e2", Fraction(250)),
        ("1e0", Fraction(1)),
        ("1e007", Fraction(10_000_000)),
        ("1.5Gi", Fraction(1_610_612_736)),
        ("500m", Fraction(1, 2)),
        ("1000m", Fraction(1)),
        ("100n", Fraction(1, 10_000_000)),
        ("250u", Fraction(1, 4000)),
        ("8", Fraction(8)),
        ("+.5k", Fraction(500)),
        ("-1.Mi", Fraction(-1_048_576)),
        ("0", Fraction(0)),
        ("-0", Fraction(0)),
        ("007", Fraction(7)),
        (" 3 ", Fraction(3)),
        (8, Fraction(8)),
        (2.5, Fraction(5, 2)),
        (1e-7, Fraction(1, 10_000_000)),
        # 40 significant digits times 2^60: exact, not rounded to decimal's default 28 digits
        (
            "1234567890123456789012345678901234567890Ei",
            Fraction(1_423_359_869_420_436_337_655_244_273_765_524_427_376_410_106_750_713_200_640),
        ),
    ],
)
def test_quantities_have_their_kubernetes_values(text: object, expected: Fraction) -> None:
    q = quantity(text)
    assert q is not None
    assert Fraction(q) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "E",
        "Ei",
        "Gi",
        "e3",
        ".",
        "+",
        "-",
        "1e",  # an exponent needs digits
        "1E-",
        "1Ei3",
        "1EE",
        "1e3.5",  # the exponent is an integer
        "1e3k",
        "1K",  # K only in Ki
        "1ki",
        "1 Gi",
        "1.2.3",
        "--1",
        "1e9223372036854775808",  # the exponent is an int64
        "0e99999999999999999999",
        "\uff11",  # digits are ASCII: FULLWIDTH DIGIT ONE
        "\u0663",  # ARABIC-INDIC DIGIT THREE
        "inf",
        "NaN",
        "0x10",
        "1_000",
        float("inf"),
        float("nan"),
        True,
        None,
        [1],
        {"a": 1},
    ],
)
def test_anything_else_is_none(text: object) -> None:
    assert quantity(text) is None


def test_magnitudes_no_resource_has_are_none_and_the_rest_is_safe_to_add_and_multiply() -> None:
    assert quantity("1e10001") is None
    assert quantity("1e-10001") is None
    assert quantity("1" + "0" * 20_000) is None
    assert quantity(10**20_000) is None
    assert quantity("1" * 100_000 + "Ei") is None
    assert quantity("1e-9223372036854775808") is None
    big = quantity("9e10000")
    assert big is not None
    assert Fraction(big) == 9 * 10**10_000
    assert Fraction(big * 1000 + big) == 9009 * 10**10_000  # the default decimal context carries it
    # a huge coefficient and an exponent that cancel out are one valid value
    tiny_digits = quantity("0." + "0" * 10_005 + "1e10000")
    assert tiny_digits is not None
    assert Fraction(tiny_digits) == Fraction(1, 1_000_000)
    assert quantity("0e9999999") == 0


def test_pods_and_nodes_with_exa_quantities_are_read_not_raised_on() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"resources": {"requests": {"memory": "1Ei", "ephemeral-storage": "2E"}}}]},
    }
    assert pod_requests(pod) == {"memory": 1_152_921_504_606_846_976, "ephemeral-storage": 2 * 10**18}
    node = {"metadata": {"name": "n"}, "status": {"allocatable": {"memory": "1Ei", "nvidia.com/gpu": "8"}}}
    assert node_info(node).allocatable == {"memory": 1_152_921_504_606_846_976, "nvidia.com/gpu": 8}


_ALPHABET = "0123456789.+-eEiKMGTPnumk \t"


@settings(max_examples=500)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=_ALPHABET),
        st.integers(),
        st.floats(),
        st.integers(min_value=-(10**12_000), max_value=10**12_000),
    )
)
def test_quantity_never_raises(value: object) -> None:
    q = quantity(value)
    assert q is None or q.is_finite()


@settings(max_examples=500)
@given(
    sign=st.sampled_from(["", "+", "-"]),
    whole=st.text(alphabet="0123456789", max_size=40),
    point=st.booleans(),
    fraction=st.text(alphabet="0123456789", max_size=40),
    suffix=st.one_of(
        st.sampled_from(sorted(MULTIPLIERS)).map(lambda s: (s, MULTIPLIERS[s])),
        st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), st.integers(0, 60)).map(
            lambda t: (f"{t[0]}{t[1]}{t[2]}", Fraction(10) ** (-t[2] if t[1] == "-" else t[2]))
        ),
    ),
)
def test_a_formatted_number_and_suffix_parse_to_number_times_multiplier(
    sign: str, whole: str, point: bool, fraction: str, suffix: tuple[str, Fraction]
) -> None:
    if not point:
        fraction = ""
    if not whole and not fraction:
        whole = "0"  # the grammar needs a digit on one side of the point
    text = f"{sign}{whole}{'.' if point else ''}{fraction}{suffix[0]}"
    number = Fraction(int(whole or "0") * 10 ** len(fraction) + int(fraction or "0"), 10 ** len(fraction))
    expected = (-number if sign == "-" else number) * suffix[1]
    q = quantity(text)
    assert q is not None, text
    assert Fraction(q) == expected, text
