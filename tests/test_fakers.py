from __future__ import annotations

import random
import uuid
from datetime import datetime

import pytest
from jinja2.exceptions import SecurityError

from engine.fakers import (
    FakerFacade,
    RandomFacade,
    UnknownGeneratorError,
    faker_for_locale,
)
from engine.sandbox import TemplateLimitError, new_environment


def render(source: str, seed: int = 5) -> str:
    env = new_environment()
    env.budget.reset()
    faker = FakerFacade("en_US", random.Random(seed))
    rng = RandomFacade(random.Random(seed))
    return env.from_string(source).render(faker=faker, random=rng)


def draws(facade: FakerFacade) -> list[object]:
    return [
        facade.name(),
        facade.uuid4(),
        facade.date_time(end_datetime=datetime(2024, 1, 1)),
        facade.sentence(nb_words=6),
        facade.pyint(),
    ]


def test_same_seed_gives_same_faker_data() -> None:
    """Two facades built with random.Random(5) produce the same sequence of values."""
    first = FakerFacade("en_US", random.Random(5))
    second = FakerFacade("en_US", random.Random(5))
    assert draws(first) + draws(first) == draws(second) + draws(second)


def test_different_seeds_give_different_faker_data() -> None:
    """The facade really draws from the rng it was given."""
    assert draws(FakerFacade("en_US", random.Random(1))) != draws(FakerFacade("en_US", random.Random(2)))


def test_interleaving_facades_does_not_change_their_data() -> None:
    """Facades sharing one cached Faker give the same values whether their calls interleave or not."""
    alone = [draws(FakerFacade("en_US", random.Random(seed))) for seed in (7, 8)]
    first = FakerFacade("en_US", random.Random(7))
    second = FakerFacade("en_US", random.Random(8))
    mixed: list[list[object]] = [[], []]
    for _ in range(5):
        mixed[0].append(first.name())
        mixed[1].append(second.name())
    first_again = FakerFacade("en_US", random.Random(7))
    second_again = FakerFacade("en_US", random.Random(8))
    assert [[first_again.name() for _ in range(5)], [second_again.name() for _ in range(5)]] == mixed
    assert alone == [draws(FakerFacade("en_US", random.Random(seed))) for seed in (7, 8)]


def test_faker_works_inside_a_sandboxed_template() -> None:
    """faker.name(), faker.email() and friends render through the sandbox's call."""
    source = (
        "{{ faker.name() }}|{{ faker.email() }}|{{ faker.sentence(nb_words=6) }}|{{ random.randint(1, 6) }}"
    )
    assert render(source) == render(source)
    assert 4 == len(render(source).split("|"))


@pytest.mark.parametrize(
    "source",
    [
        "{{ faker.seed(1) }}",
        "{{ faker.seed_instance(1) }}",
        "{{ faker.random }}",
        "{{ faker.add_provider }}",
        "{{ faker._factories }}",
        "{{ faker._generator }}",
        "{{ faker.unique.name() }}",
        "{{ faker.binary() }}",
        "{{ faker.parse('{{binary}}') }}",
        "{{ faker.pystr_format('{{seed_instance}}') }}",
        "{{ faker.name._facade }}",
        "{{ faker.uuid4(cast_to=faker.name) }}",
        "{{ random._rng }}",
        "{{ random.seed(1) }}",
        "{{ random.randint.__self__ }}",
    ],
)
def test_blocked_names_fail_inside_a_template(source: str) -> None:
    """Reseeding, provider plumbing, private state and blob generators are out of reach."""
    with pytest.raises((UnknownGeneratorError, SecurityError)):
        render(source)


def test_unknown_generator_suggests_the_closest_name() -> None:
    """A misspelt generator names the closest real one."""
    with pytest.raises(UnknownGeneratorError) as caught:
        render("{{ faker.nme() }}")
    assert "faker has no generator 'nme'; did you mean 'name'?" == str(caught.value)
    assert ("nme", "name") == (caught.value.name, caught.value.suggestion)


def test_unknown_random_helper_suggests_the_closest_name() -> None:
    """A misspelt random helper names the closest real one."""
    with pytest.raises(UnknownGeneratorError) as caught:
        RandomFacade(random.Random(1)).randnt  # noqa: B018
    assert "random has no helper 'randnt'; did you mean 'randint'?" == str(caught.value)


def test_unknown_generator_is_not_an_attribute_error() -> None:
    """Jinja would turn an AttributeError into a silent Undefined, so the error is its own type."""
    assert not issubclass(UnknownGeneratorError, AttributeError)


@pytest.mark.parametrize(
    "source",
    [
        "{{ faker.pystr(max_chars=10**9) }}",
        "{{ faker.paragraphs(nb=10**8) }}",
        "{{ faker.paragraphs(10**8) }}",
        "{{ faker.random_number(digits=10**6) }}",
        "{{ random.choices([1, 2], k=10**9) }}",
        "{{ random.sample(range(10), 10**9) }}",
        "{{ random.hex(10**9) }}",
    ],
)
def test_size_arguments_are_capped(source: str) -> None:
    """Size, length and count arguments above 10,000 raise TemplateLimitError."""
    with pytest.raises(TemplateLimitError):
        render(source)


def test_size_error_names_the_argument_and_limit() -> None:
    """The size error says which argument was too big and the limit."""
    with pytest.raises(TemplateLimitError) as caught:
        render("{{ faker.pystr(max_chars=10**9) }}")
    assert "faker.pystr(): max_chars=1,000,000,000 is too big; the limit is 10,000" == str(caught.value)


def test_random_facade_returns_the_right_types_and_ranges() -> None:
    """Each RandomFacade helper returns a value of the documented type and range."""
    rng = RandomFacade(random.Random(3))
    assert 0.0 <= rng.random() < 1.0
    assert all(1 <= rng.randint(1, 6) <= 6 for _ in range(50))
    assert 2.0 <= rng.uniform(2.0, 3.0) <= 3.0
    assert rng.choice(["a", "b"]) in {"a", "b"}
    assert rng.choice({"k": 1}) == "k"
    assert 4 == len(rng.choices("ab", weights=[1, 0], k=4))
    assert ["a"] * 4 == rng.choices("ab", weights=[1, 0], k=4)
    assert sorted(rng.sample(range(10), 10)) == list(range(10))
    assert isinstance(rng.gauss(0, 1), float)
    assert rng.lognormvariate(0, 1) > 0
    assert rng.expovariate(2.0) > 0
    assert 32 == len(rng.hex(16))
    assert "b" == rng.weighted({"a": 0, "b": 5})


def test_random_shuffle_returns_a_new_list() -> None:
    """shuffle leaves its input alone and returns a shuffled copy."""
    items = list(range(20))
    shuffled = RandomFacade(random.Random(1)).shuffle(items)
    assert list(range(20)) == items
    assert sorted(shuffled) == items


def test_random_uuid4_is_a_valid_version_4_uuid() -> None:
    """uuid4 gives a canonical version-4 UUID string, the same for the same seed."""
    value = RandomFacade(random.Random(9)).uuid4()
    assert 4 == uuid.UUID(value).version
    assert value == str(uuid.UUID(value))
    assert value == RandomFacade(random.Random(9)).uuid4()


def test_random_facade_is_deterministic_in_templates() -> None:
    """The same seed renders the same random draws."""
    source = (
        "{{ random.randint(1, 100) }} {{ random.choice(range(10)) }} "
        "{{ random.uuid4() }} {{ random.weighted({'a': 1, 'b': 1}) }}"
    )
    assert render(source, seed=11) == render(source, seed=11)


def test_unknown_locale_is_a_value_error() -> None:
    """An unknown locale is refused with a clear message."""
    with pytest.raises(ValueError, match="unknown Faker locale 'xx_YY'"):
        faker_for_locale("xx_YY")


def test_known_locale_works_and_is_cached() -> None:
    """de_DE builds a Faker once and reuses it."""
    assert faker_for_locale("de_DE") is faker_for_locale("de_DE")
    assert FakerFacade("de_DE", random.Random(1)).name()


def test_facade_never_reseeds_the_shared_faker() -> None:
    """Using a facade leaves the rng it was given as the only source of randomness."""
    rng = random.Random(4)
    facade = FakerFacade("en_US", rng)
    expected_state = random.Random(4)
    facade.name()
    assert rng.getstate() != expected_state.getstate()
    assert faker_for_locale("en_US")._factories[0].random is rng


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "ja_JP"])
def test_cached_weights_and_word_lists_draw_exactly_what_faker_draws(locale: str) -> None:
    """The engine's O(log n) weighted draws and uncopied word lists give the same values as Faker's own
    random_elements and get_words_list."""
    from faker.providers import BaseProvider
    from faker.providers.lorem import Provider as Lorem

    names = ["name", "first_name", "last_name", "user_name", "email", "address", "sentence", "catch_phrase",
             "company", "job", "city", "file_path", "domain_word", "paragraph", "street_address", "word",
             "words", "sentences", "text", "slug", "texts", "paragraphs"]

    def draws() -> list:
        facade = FakerFacade(locale, random.Random(11))
        return [getattr(facade, name)() for name in names * 20] + [
            facade.words(nb=4, unique=True), facade.word(ext_word_list=["a", "b", "c"]),
            facade.sentence(nb_words=10, ext_word_list=("x", "y")), facade.words(part_of_speech="verb")
            if locale == "en_US" else None]

    faster = draws()  # the first facade installs the fast paths
    patched = BaseProvider.random_elements, Lorem.get_words_list
    BaseProvider.random_elements = patched[0].original  # type: ignore[attr-defined]
    Lorem.get_words_list = patched[1].original  # type: ignore[attr-defined,method-assign]
    try:
        plain = draws()
    finally:
        BaseProvider.random_elements, Lorem.get_words_list = patched  # type: ignore[method-assign]
    assert plain == faster


@pytest.mark.parametrize("size", ["3e7", "30000000.5", "10.0 ** 30"])
def test_size_caps_take_floats_too(size: str) -> None:
    """A float size (3e7, inf) is capped like an int: Faker would take it as readily."""
    env = new_environment()
    template = env.from_string("{{ faker.text(max_nb_chars=" + size + ") | length }}")
    with pytest.raises(TemplateLimitError):
        template.render(faker=FakerFacade("en_US", random.Random(1)))


def test_generators_that_read_today_follow_the_simulated_clock() -> None:
    """Locale providers that read today's date (ru_RU's OGRN year here) see the simulated time instead."""
    from engine.fakers import set_time

    facade = FakerFacade("ru_RU", random.Random(3))
    set_time(facade, 1041379200000)  # 2003-01-01
    years = {int(facade.businesses_ogrn()[1:3]) for _ in range(200)}
    assert years <= {1, 2, 3}


def test_generators_with_a_date_fixed_at_import_are_not_offered() -> None:
    """passport_dates(birthday=date.today()) took its default on the day Faker was imported: refused."""
    facade = FakerFacade("en_US", random.Random(3))
    with pytest.raises(UnknownGeneratorError):
        facade.passport_dates()


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "ja_JP", "fr_CA", "es_MX", "zh_TW"])
def test_the_quick_locale_lookup_picks_the_providers_faker_picks(locale: str) -> None:
    """Faker(locale) built with the engine's locale lookup (no folder listing) gets the same provider
    classes, localized the same way, as Faker's own lookup."""
    import faker
    from faker.factory import Factory

    from engine.fakers import _locale_lookup

    def providers(quick: bool) -> list[tuple[type, str | None]]:
        Factory._find_provider_class.cache_clear()
        if quick:
            with _locale_lookup():
                generator = faker.Faker(locale)._factories[0]
        else:
            generator = faker.Faker(locale)._factories[0]
        return [(type(provider), getattr(provider, "__lang__", None)) for provider in generator.get_providers()]

    try:
        assert providers(quick=False) == providers(quick=True)
    finally:
        Factory._find_provider_class.cache_clear()
