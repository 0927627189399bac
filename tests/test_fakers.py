from __future__ import annotations

import random
import uuid
from datetime import datetime

import pytest
from jinja2.exceptions import SecurityError

from engine.templates import fakers as fakers_module
from engine.templates.fakers import FakerFacade as _Facade
from engine.templates.fakers import Fakers, UnknownGeneratorError, set_time
from engine.templates.randoms import RandomFacade
from engine.templates.sandbox import TemplateLimitError, new_environment


def FakerFacade(locale: str, rng: random.Random, fakers: Fakers | None = None) -> _Facade:  # noqa: N802
    """A facade on a pool of its own, as one run's instances share their run's."""
    return _Facade(locale, rng, fakers or Fakers())


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
    """Facades sharing one run's Faker give the same values whether their calls interleave or not."""
    alone = [draws(FakerFacade("en_US", random.Random(seed))) for seed in (7, 8)]
    pool = Fakers()
    first = FakerFacade("en_US", random.Random(7), pool)
    second = FakerFacade("en_US", random.Random(8), pool)
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
    assert ("faker", "nme") == (caught.value.owner, caught.value.name)


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
        Fakers().generator("xx_YY")


def test_a_run_builds_one_generator_per_locale() -> None:
    """A pool builds de_DE once and reuses it; another pool (another run) has its own."""
    pool = Fakers()
    assert pool.generator("de_DE") is pool.generator("de_DE")
    assert pool.generator("de_DE") is not Fakers().generator("de_DE")
    assert FakerFacade("de_DE", random.Random(1), pool).name()


def test_facade_draws_only_from_the_rng_it_was_given() -> None:
    """Using a facade points its run's generator at the instance's rng, the only source of randomness."""
    rng = random.Random(4)
    pool = Fakers()
    facade = FakerFacade("en_US", rng, pool)
    expected_state = random.Random(4)
    facade.name()
    assert rng.getstate() != expected_state.getstate()
    assert pool.generator("en_US").random is rng


def test_a_users_own_faker_is_left_alone() -> None:
    """After facades draw dates at a simulated 1970, a user's Faker() still reads today, and Faker's classes,
    modules and shared random are what they were."""
    import datetime as dt

    import faker
    import faker.providers.date_time as date_time
    from faker.generator import random as shared_random
    from faker.providers import BaseProvider
    from faker.providers.lorem import Provider as Lorem

    before = (BaseProvider.random_elements, Lorem.get_words_list, date_time.datetime, date_time.dtdate,
              date_time._get_local_timezone, shared_random.getstate())
    facade = FakerFacade("en_US", random.Random(2))
    set_time(facade, 0)
    assert facade.date_this_year().startswith("1970") if isinstance(facade.date_this_year(), str) else \
        facade.date_this_year().year == 1970
    facade.name(), facade.sentence(), facade.date_time_this_month()
    after = (BaseProvider.random_elements, Lorem.get_words_list, date_time.datetime, date_time.dtdate,
             date_time._get_local_timezone, shared_random.getstate())
    assert before == after
    assert dt.date.today().year == faker.Faker().date_this_year().year


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "ja_JP"])
def test_a_runs_generators_draw_exactly_what_faker_draws(locale: str) -> None:
    """The run's copies of Faker's providers (O(log n) weighted draws, word lists not copied) give the same
    values from the same random stream as Faker's own, unchanged generator."""
    import faker

    names = ["name", "first_name", "last_name", "user_name", "email", "address", "sentence", "catch_phrase",
             "company", "job", "city", "file_path", "domain_word", "paragraph", "street_address", "word",
             "words", "sentences", "text", "slug", "texts", "paragraphs", "ipv4", "uuid4", "pyint"]

    def draws(call: object) -> list:
        out = [call(name) for name in names * 20]  # type: ignore[operator]
        out += [call("words", nb=4, unique=True), call("word", ext_word_list=["a", "b", "c"]),
                call("sentence", nb_words=10, ext_word_list=("x", "y"))]
        if locale == "en_US":
            out.append(call("words", part_of_speech="verb"))
        return out

    facade = FakerFacade(locale, random.Random(11))
    plain = faker.Faker(locale)
    plain._factories[0].random = random.Random(11)
    assert draws(lambda name, **kw: getattr(plain, name)(**kw)) == \
        draws(lambda name, **kw: getattr(facade, name)(**kw))


@pytest.mark.parametrize("size", ["3e7", "30000000.5", "10.0 ** 30"])
def test_size_caps_take_floats_too(size: str) -> None:
    """A float size (3e7, inf) is capped like an int: Faker would take it as readily."""
    env = new_environment()
    template = env.from_string("{{ faker.text(max_nb_chars=" + size + ") | length }}")
    with pytest.raises(TemplateLimitError):
        template.render(faker=FakerFacade("en_US", random.Random(1)))


def test_generators_that_read_today_follow_the_simulated_clock() -> None:
    """Locale providers that read today's date (ru_RU's OGRN year here) see the simulated time instead."""
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
    """The engine's provider lookup (no folder listing) picks the classes Faker picks, localized the same way."""
    from faker.config import PROVIDERS
    from faker.factory import Factory

    from engine.templates.simulated_faker import provider_class

    paths = [path for path in PROVIDERS if path != "faker.providers"]
    assert [Factory._find_provider_class(path, locale)[:2] for path in paths] == \
        [provider_class(path, locale) for path in paths]


def test_the_facade_module_holds_no_faker_of_its_own() -> None:
    """No process-wide Faker is left in the module: every generator belongs to a run's pool."""
    assert not hasattr(fakers_module, "faker_for_locale")


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "ru_RU"])
def test_the_generators_offered_are_those_of_a_faker_generator(locale: str) -> None:
    """generator_names (read off the provider classes) lists what a Faker generator of the locale offers, less
    the blocked ones and those dated at import; each signature is that of the generator's bound method."""
    import inspect

    import faker

    from engine.templates.fakers import BLOCKED_GENERATORS, _dated_at_import, _signature, generator_names

    generator = faker.Faker(locale)._factories[0]
    offered = {name for provider in generator.get_providers() for name in dir(provider)
               if not name.startswith("_") and callable(getattr(provider, name))
               and not _dated_at_import(getattr(provider, name))} - BLOCKED_GENERATORS
    assert offered == generator_names(locale)
    for name in sorted(offered):
        assert inspect.signature(getattr(generator, name)) == _signature(locale, name), name
