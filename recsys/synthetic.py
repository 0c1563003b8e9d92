"""Seeded synthetic recommender data as native Spark DataFrames (pure builders, no I/O).

The model, at any scale (1M users x 100k items x 50M interactions runs on two cores):

* Items ``1..n_items`` each have a primary genre and up to two more; genre sizes follow the
  genre frequencies of MovieLens. Within its genre an item has a popularity rank, and draws of
  that rank follow a bounded power law (Zipf-like, ``popularity_exponent``).
* Users ``1..n_users`` each belong to one of ``n_clusters`` taste clusters; a cluster prefers 2-3
  genres. How active a user is follows a power law over user ranks (``user_activity_exponent``).
* Each interaction draws a user by activity; with probability ``taste_strength`` a genre the
  user's cluster prefers, else a genre weighted by its size; then an item of that genre by
  popularity rank; a half-star rating (higher on average in preferred genres) and a time in
  ``[start, end)``. Repeated (user, item) draws keep the latest, as ingest does, so fewer rows
  than ``n_interactions`` are delivered: about 90% at 1M x 100k x 50M with the defaults, far
  fewer when users draw many times from a tiny catalogue.

Every random draw is ``xxhash64(seed, purpose, row key)`` mapped to ``[0, 1)``: no Python UDF,
nothing collected, and rows depend only on the config, not on partitioning or task order (so the
output is identical for any ``partitions``; that setting only changes parallelism). Ranks become
ids through a seeded affine bijection ``id = 1 + (a*rank + b) mod n`` (``a`` coprime to ``n``),
so heavy users and popular items are spread over the id range without a join or a sort.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from pyspark.sql import Column
from pyspark.sql import functions as F

from recsys.warehouse.tables import Col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The genres of MovieLens, most frequent first: name | count in ml-latest-small's movies.csv |
# six title nouns | tag words. Counts set genre sizes; nouns and tags make titles and tag_text.
_GENRE_TABLE: Final = """
Drama|4361|Promise Letters Winter Daughter Silence Harbor|moving, family, grief, quiet
Comedy|3756|Wedding Neighbors Vacation Roommate Party Mixup|funny, quirky, witty, silly
Thriller|1894|Witness Conspiracy Pursuit Alibi Ransom Signal|tense, twist, suspense, dark
Action|1828|Strike Mercenary Fury Convoy Ambush Vendetta|explosive, chase, fights, heist
Romance|1596|Kiss Paris Heart Summer Letters Serenade|love, sweet, romantic, longing
Adventure|1263|Expedition Island Treasure Quest Voyage Jungle|epic, journey, exotic, quest
Crime|1199|Syndicate Detective Heist Mob Verdict Precinct|gritty, gangster, noir, heist
Sci-Fi|980|Galaxy Android Colony Signal Orbit Paradox|space, future, aliens, robots
Horror|978|Cabin Curse Ritual Haunting Creature Cellar|scary, gore, creepy, haunted
Fantasy|779|Dragon Kingdom Sorcerer Crown Realm Oracle|magic, myth, wizards, fairy tale
Children|664|Puppy Treehouse Holiday Toys Pony Snowman|kids, family, cute, friendship
Animation|611|Robot Forest Bunny Toon Lantern Kingdom|animated, colorful, pixar, anime
Mystery|573|Clue Manor Disappearance Riddle Lighthouse Key|whodunit, puzzling, clever
Documentary|440|Truth Planet Ocean Voices Frontline Archive|true story, nature, history
War|382|Trenches Battalion Frontline Beachhead Siege Armistice|wwii, battle, soldiers
Musical|334|Rhythm Broadway Melody Stage Chorus Encore|singing, dance, songs, broadway
Western|167|Outlaw Saloon Frontier Ranch Gunslinger Canyon|cowboys, desert, duel
IMAX|158|Horizon Summit Depths Skyline Odyssey Everest|imax, spectacle, visuals
Film-Noir|87|Shadows Dame Nightfall Smoke Doublecross Alley|noir, femme fatale, moody
"""
_GENRE_ROWS: Final = [line.split("|") for line in _GENRE_TABLE.strip().splitlines()]
#: MovieLens genre names, most frequent first, and their counts in ml-latest-small's movies.csv.
GENRE_COUNTS: Final[tuple[tuple[str, int], ...]] = tuple((r[0], int(r[1])) for r in _GENRE_ROWS)
GENRES: Final[tuple[str, ...]] = tuple(g for g, _ in GENRE_COUNTS)
_GENRE_NOUNS: Final = tuple(r[2].split() for r in _GENRE_ROWS)
_GENRE_TAGS: Final = tuple([t.strip() for t in r[3].split(",")] for r in _GENRE_ROWS)
#: Ratings at or above this set ``is_positive`` (the MovieLens convention ingest uses).
POSITIVE_THRESHOLD: Final = 4.0
MAX_ID: Final = 2**31 - 1
MAX_CLUSTERS: Final = 10_000
# Generic title words.
_ADJECTIVES: Final = (
    "Silent Broken Golden Last Hidden Crimson Lonely Wild Eternal Secret Burning Frozen Lost "
    "Midnight Scarlet Hollow Distant Savage Gentle Electric Bitter Endless Little Dark Brave "
    "Restless Final Forgotten Sweet Iron Velvet Northern"
)
_NOUNS: Final = (
    "River Night Garden City Road Mirror Storm Window Sky Stranger Game Song Fire Empire Shore "
    "Moon Station Country Border Dream Ghost Hour Kingdom Legacy Machine Season Sister Valley "
    "Witness Voyage Code Bridge"
)
_SEQUELS: Final = "2 II III Returns Reloaded"

# Purposes of the hashed draws (any distinct integers; changing one changes the data).
_USER, _TASTE, _PREF, _GENRE, _ITEM, _TIME, _NOISE, _BIAS, _QUALITY = range(1, 10)
_CLUSTER, _N_GENRES, _G1, _G2, _PATTERN, _W1, _W2, _W3, _YEAR, _TAG = range(20, 30)
_PERM_USERS, _PERM_ITEMS = 101, 102
_MASK53: Final = (1 << 53) - 1


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """Size and shape of a synthetic delivery; validated here, trusted by every builder.

    Attributes:
        n_users: Users, ids ``1..n_users``; 1 to 2**31-1.
        n_items: Items, ids ``1..n_items``; ``n_genres`` to 2**31-1 (every genre gets an item).
        n_interactions: Draws before repeated (user, item) pairs are removed; >= 1.
        n_genres: How many of :data:`GENRES` are used (the most frequent ones); 2 to 19.
        n_clusters: Taste clusters; 1 to 10,000.
        popularity_exponent: Exponent ``s`` >= 0 of item popularity within a genre, weight of
            rank ``r`` ~ ``r**-s``; 0 is uniform, 1 is Zipf.
        taste_strength: Probability (0-1) that a draw takes a genre the user's cluster prefers.
        user_activity_exponent: Exponent >= 0 of user activity over user ranks, as above; 0.5
            gives a top user about 0.05% of 1M users' activity (MovieLens-like), 1 gives ~7%.
        start: Earliest event time (timezone-aware).
        end: Events fall in ``[start, end)``, end exclusive; ingest rejects events after the
            delivery date, so keep ``end`` at or before it.
        seed: Seed of every draw, 0 to 2**63-1; the same config gives the same rows.
        partitions: Spark partitions of the generated draws and of the de-duplication, >= 1;
            performance only (about one per million interactions is a good size).
    """

    n_users: int = 1_000
    n_items: int = 500
    n_interactions: int = 20_000
    n_genres: int = len(GENRES)
    n_clusters: int = 20
    popularity_exponent: float = 1.0
    taste_strength: float = 0.8
    user_activity_exponent: float = 0.5
    start: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2025, 1, 1, tzinfo=UTC)
    seed: int = 0
    partitions: int = 4

    def __post_init__(self) -> None:
        _check_int("n_users", self.n_users, 1, MAX_ID)
        _check_int("n_genres", self.n_genres, 2, len(GENRES))
        _check_int("n_items", self.n_items, self.n_genres, MAX_ID)
        _check_int("n_interactions", self.n_interactions, 1, 2**62)
        _check_int("n_clusters", self.n_clusters, 1, MAX_CLUSTERS)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("partitions", self.partitions, 1, 1_000_000)
        for name, hi in (
            ("popularity_exponent", 10.0),
            ("user_activity_exponent", 10.0),
            ("taste_strength", 1.0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= hi:
                raise ValueError(f"{name}: must be a number in [0, {hi:g}], got {value!r}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise ValueError(f"{name}: expected a timezone-aware datetime, got {value!r}")
        if self.start.timestamp() < 0 or self.end <= self.start:
            raise ValueError(
                f"start, end: need 1970-01-01 <= start < end, got {self.start} and {self.end}"
            )


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name}: must be an integer in [{lo}, {hi}], got {value!r}")


# --------------------------------------------------------------------------------------------
# Driver-side parameters: small, derived from the config alone.


def genre_sizes(config: SyntheticConfig) -> tuple[int, ...]:
    """Items per genre (by primary genre), proportional to the MovieLens counts, each >= 1."""
    weights = [c for _, c in GENRE_COUNTS[: config.n_genres]]
    spare = config.n_items - config.n_genres
    raw = [spare * w / sum(weights) for w in weights]
    sizes = [math.floor(x) for x in raw]
    # Largest remainder: hand the rounding leftovers to the largest fractional parts.
    by_fraction = sorted(range(len(raw)), key=lambda k: (sizes[k] - raw[k], k))
    for k in by_fraction[: spare - sum(sizes)]:
        sizes[k] += 1
    return tuple(1 + s for s in sizes)


def cluster_preferences(config: SyntheticConfig) -> tuple[tuple[int, ...], ...]:
    """Per cluster, the indices into :data:`GENRES` it prefers (2 or 3, never all genres)."""
    rng = random.Random(config.seed)
    most = min(3, config.n_genres - 1)
    weights = [float(c) for _, c in GENRE_COUNTS[: config.n_genres]]
    prefs = []
    for _ in range(config.n_clusters):
        # Weighted by genre size, without replacement: many clusters like Drama, few Film-Noir,
        # and a small genre's few items are not drawn over and over by a whole cluster.
        left = list(range(config.n_genres))
        chosen: list[int] = []
        for _ in range(min(rng.choice((2, 3)), most)):
            pick = rng.choices(left, weights=[weights[g] for g in left])[0]
            left.remove(pick)
            chosen.append(pick)
        prefs.append(tuple(chosen))
    return tuple(prefs)


def _affine(seed: int, purpose: int, n: int) -> tuple[int, int]:
    rng = random.Random(seed * 1_000 + purpose)
    if n == 1:
        return 1, 0
    a = rng.randrange(1, n)
    while math.gcd(a, n) != 1:
        a = rng.randrange(1, n)
    return a, rng.randrange(n)


# --------------------------------------------------------------------------------------------
# Column expressions.


def uniform(seed: int, purpose: int, *keys: Column) -> Column:
    """A uniform draw in ``[0, 1)`` determined by ``(seed, purpose, keys)`` (53 hash bits)."""
    bits = F.xxhash64(F.lit(seed), F.lit(purpose), *keys).bitwiseAND(F.lit(_MASK53))
    return bits.cast("double") / F.lit(float(1 << 53))


def normal(seed: int, purpose: int, key: Column) -> Column:
    """A standard normal draw determined by ``(seed, purpose, key)``."""
    # Box-Muller: z = sqrt(-2 ln u1) cos(2 pi u2) for independent u1 in (0, 1], u2 in [0, 1).
    u1 = F.lit(1.0) - uniform(seed, purpose, key)
    u2 = uniform(seed, purpose + 1_000, key)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)


def power_law_rank(u: Column, n: Column, exponent: float) -> Column:
    """0-based rank in ``[0, n)`` drawn from ``u`` ~ U[0, 1) with weight ~ ``(rank+1)**-s``."""
    # Bounded continuous power law, density f(x) ~ x^-s on [1, n+1); its CDF and inverse:
    #   s != 1:  F(x) = (x^(1-s) - 1) / ((n+1)^(1-s) - 1),  x = (1 + u((n+1)^(1-s) - 1))^(1/(1-s))
    #   s == 1:  F(x) = ln x / ln(n+1),                      x = (n+1)^u
    # rank = floor(x) - 1 approximates the discrete Zipf law (exact for s = 0: uniform).
    n1 = n.cast("double") + F.lit(1.0)
    if abs(1.0 - exponent) < 1e-9:
        x = F.pow(n1, u)
    else:
        k = 1.0 - exponent
        x = F.pow(F.lit(1.0) + u * (F.pow(n1, F.lit(k)) - F.lit(1.0)), F.lit(1.0 / k))
    rank = F.floor(x).cast("long") - F.lit(1)
    return F.greatest(F.lit(0), F.least(rank, n.cast("long") - F.lit(1)))


def _bucket(value: Column, lower_bounds: Sequence[float]) -> Column:
    """Index k of the bucket holding ``value``, given ascending lower bounds of buckets 1..K."""
    index: Column = F.lit(0)
    for bound in lower_bounds:
        index = index + F.when(value >= F.lit(bound), 1).otherwise(0)
    return index


def _permute(rank: Column, a: int, b: int, n: int) -> Column:
    return F.lit(1) + F.pmod(rank * F.lit(a) + F.lit(b), F.lit(n))


def _pick(words: str, draw: Column) -> Column:
    """One of the space-separated ``words``, chosen by ``draw`` ~ U[0, 1)."""
    split = words.split()
    return F.element_at(F.lit(split), (F.floor(draw * len(split)) + 1).cast("int"))


def _parts(config: SyntheticConfig, rows: int) -> int:
    """Partitions for a range of ``rows``: about a million rows each, at most ``partitions``."""
    return max(1, min(config.partitions, -(-rows // 1_000_000)))


def _cluster_of(config: SyntheticConfig, user_id: Column) -> Column:
    return F.floor(uniform(config.seed, _CLUSTER, user_id) * config.n_clusters).cast("int")


def _preferred(config: SyntheticConfig, cluster: Column) -> Column:
    prefs = [list(p) for p in cluster_preferences(config)]
    return F.element_at(F.lit(prefs), cluster + F.lit(1))


# --------------------------------------------------------------------------------------------
# Builders.


def user_profiles(spark: SparkSession, config: SyntheticConfig) -> DataFrame:
    """Ground truth per user: ``user_id``, ``cluster_id`` and ``preferred_genres`` (names)."""
    users = spark.range(1, config.n_users + 1, numPartitions=_parts(config, config.n_users))
    cluster = _cluster_of(config, F.col("id"))
    names = F.lit(list(GENRES[: config.n_genres]))
    return users.select(
        F.col("id").alias(Col.USER_ID),
        cluster.alias("cluster_id"),
        F.transform(_preferred(config, cluster), lambda g: F.element_at(names, g + 1)).alias(
            "preferred_genres"
        ),
    )


def synthetic_items(spark: SparkSession, config: SyntheticConfig) -> DataFrame:
    """Rows of the item catalogue: ``item_id, title, year, genres, tag_text`` (genres[0] primary).

    Titles are "[The] Adjective Noun"-like, deterministic per item, sometimes with a comma or
    double quotes (as real titles have); ``year`` is in 1950-2025; ``tag_text`` joins the genres,
    two genre tag words and the title's genre noun with ", ".
    """
    n, seed = config.n_genres, config.seed
    sizes = genre_sizes(config)
    starts = [sum(sizes[:k]) for k in range(1, n)]
    positions = spark.range(0, config.n_items, numPartitions=_parts(config, config.n_items))
    a, b = _affine(seed, _PERM_ITEMS, config.n_items)
    pos = F.col("id")
    item_id = _permute(pos, a, b, config.n_items)
    key = F.col(Col.ITEM_ID)
    staged = positions.select(item_id.alias(Col.ITEM_ID), _bucket(pos, starts).alias("_g"))
    # 30% of items have one genre, 40% two, 30% three (ml-latest-small: 29/33/24%, 14% more).
    u = uniform(seed, _N_GENRES, key)
    count = F.when(u < 0.3, 1).when(u < 0.7, 2).otherwise(3)
    others = [
        F.pmod(F.col("_g") + F.lit(1) + F.floor(uniform(seed, p, key) * (n - 1)), F.lit(n))
        for p in (_G1, _G2)
    ]
    idx = F.slice(F.array_distinct(F.array(F.col("_g").cast("long"), *others)), 1, count)
    staged = staged.select("*", F.transform(idx, lambda g: g.cast("int")).alias("_idx"))

    names = F.lit(list(GENRES[: config.n_genres]))
    nouns = [w for words in _GENRE_NOUNS[:n] for w in words]
    tags = list(_GENRE_TAGS[:n])
    g0 = F.col("_g")
    # The genre noun: word k of the primary genre's six, in the flattened list.
    noun = F.element_at(
        F.lit(nouns), (g0 * 6 + F.floor(uniform(seed, _W1, key) * 6) + 1).cast("int")
    )
    adj = _pick(_ADJECTIVES, uniform(seed, _W2, key))
    other = _pick(_NOUNS, uniform(seed, _W3, key))
    sequel = _pick(_SEQUELS, uniform(seed, _W3 + 1_000, key))
    pattern = F.floor(uniform(seed, _PATTERN, key) * 10).cast("int")
    title = (
        F.when(pattern <= 2, F.concat_ws(" ", F.lit("The"), adj, noun))
        .when(pattern <= 4, F.concat_ws(" ", adj, noun))
        .when(pattern == 5, F.concat_ws(" ", noun, F.lit("of the"), other))
        .when(pattern == 6, F.concat(adj, F.lit(" "), noun, F.lit(", The")))
        .when(pattern == 7, F.concat_ws(" ", adj, noun, sequel))
        .when(pattern == 8, F.concat(noun, F.lit(", "), adj, F.lit(" and "), other))
        .otherwise(F.concat(F.lit('"'), adj, F.lit(" "), other, F.lit('" '), noun))
    )
    year = F.lit(1950) + F.floor(uniform(seed, _YEAR, key) * 76).cast("int")

    def tag_word(genre: Column, purpose: int) -> Column:
        words = F.element_at(F.lit(tags), genre + F.lit(1))
        draw = F.floor(uniform(seed, purpose, key) * F.size(words)) + 1
        return F.element_at(words, draw.cast("int"))

    second = F.coalesce(F.get(F.col("_idx"), 1), g0)
    tag_text = F.concat_ws(
        ", ",
        F.transform(F.col("_idx"), lambda g: F.lower(F.element_at(names, g + 1))),
        tag_word(g0, _TAG),
        tag_word(second, _TAG + 1_000),
        F.lower(noun),
    )
    return staged.select(
        Col.ITEM_ID,
        title.alias(Col.TITLE),
        year.alias(Col.YEAR),
        F.transform(F.col("_idx"), lambda g: F.element_at(names, g + 1)).alias(Col.GENRES),
        F.array_join(F.array_distinct(F.split(tag_text, ", ")), ", ").alias(Col.TAG_TEXT),
    )


def interaction_draws(spark: SparkSession, config: SyntheticConfig) -> DataFrame:
    """Every draw before de-duplication: ``draw_id, user_id, item_id, genre, preferred,
    rating, event_seconds`` (``genre`` is the item's primary genre index into :data:`GENRES`;
    ``preferred`` says whether the user's cluster prefers it).
    """
    seed, n = config.seed, config.n_genres
    sizes = genre_sizes(config)
    starts = [sum(sizes[:k]) for k in range(n)]
    traffic = [s / config.n_items for s in sizes]
    bounds = [sum(traffic[:k]) for k in range(1, n)]
    ua, ub = _affine(seed, _PERM_USERS, config.n_users)
    ia, ib = _affine(seed, _PERM_ITEMS, config.n_items)
    draws = spark.range(0, config.n_interactions, numPartitions=config.partitions)
    i = F.col("id")

    user_rank = power_law_rank(
        uniform(seed, _USER, i), F.lit(config.n_users), config.user_activity_exponent
    )
    staged = draws.select(i, _permute(user_rank, ua, ub, config.n_users).alias(Col.USER_ID))
    prefs = _preferred(config, _cluster_of(config, F.col(Col.USER_ID)))
    choice = (F.floor(uniform(seed, _PREF, i) * F.size(prefs)) + 1).cast("int")
    genre = F.when(
        uniform(seed, _TASTE, i) < F.lit(config.taste_strength), F.element_at(prefs, choice)
    ).otherwise(_bucket(uniform(seed, _GENRE, i), bounds))
    staged = staged.select(
        "*", genre.alias("genre"), F.array_contains(prefs, genre).alias("preferred")
    )

    g = F.col("genre")
    rank = power_law_rank(
        uniform(seed, _ITEM, i), F.element_at(F.lit(list(sizes)), g + 1), config.popularity_exponent
    )
    position = F.element_at(F.lit(starts), g + 1).cast("long") + rank
    item_id = _permute(position, ia, ib, config.n_items)
    # Latent opinion: mean 2.95, +0.7 in preferred genres, item quality, user bias, noise; then
    # rounded to the nearest half star and clipped to [0.5, 5].
    latent = (
        F.lit(2.95)
        + F.when(F.col("preferred"), 0.7).otherwise(0.0)
        + F.lit(0.45) * normal(seed, _QUALITY, item_id)
        + F.lit(0.35) * normal(seed, _BIAS, F.col(Col.USER_ID))
        + F.lit(0.85) * normal(seed, _NOISE, i)
    )
    rating = F.least(F.lit(5.0), F.greatest(F.lit(0.5), F.round(latent * 2) / 2))
    t0 = int(config.start.timestamp())
    span = int(config.end.timestamp()) - t0
    seconds = F.lit(t0) + F.floor(uniform(seed, _TIME, i) * span).cast("long")
    return staged.select(
        i.alias("draw_id"),
        Col.USER_ID,
        item_id.alias(Col.ITEM_ID),
        "genre",
        "preferred",
        rating.alias(Col.RATING),
        seconds.alias("event_seconds"),
    )


def synthetic_interactions(spark: SparkSession, config: SyntheticConfig) -> DataFrame:
    """Rows of interactions: ``user_id, item_id, rating, is_positive, event_ts``.

    One row per distinct (user, item) drawn, keeping its latest draw, so the count is at most
    ``n_interactions``. Ratings are 0.5-5.0 in half steps, ``event_ts`` is in ``[start, end)``
    at whole seconds (UTC), ``is_positive`` is ``rating >= 4.0``.
    """
    draws = interaction_draws(spark, config)
    # Latest draw per pair in one long: event second * 16 + rating code (rating*2 in 1..10 fits
    # 4 bits), so a plain max is a fixed-width hash aggregate (a struct max would sort); a tie
    # on the second keeps the higher rating.
    packed = F.col("event_seconds") * F.lit(16) + (F.col(Col.RATING) * 2).cast("long")
    latest = (
        draws.select(Col.USER_ID, Col.ITEM_ID, packed.alias("_packed"))
        .repartition(config.partitions, Col.USER_ID, Col.ITEM_ID)
        .groupBy(Col.USER_ID, Col.ITEM_ID)
        .agg(F.max("_packed").alias("_packed"))
    )
    rating = F.col("_packed").bitwiseAND(F.lit(15)).cast("double") / 2
    return latest.select(
        Col.USER_ID,
        Col.ITEM_ID,
        rating.alias(Col.RATING),
        (rating >= F.lit(POSITIVE_THRESHOLD)).alias(Col.IS_POSITIVE),
        F.timestamp_seconds(F.shiftright(F.col("_packed"), 4)).alias(Col.EVENT_TS),
    )


def synthetic_users(
    spark: SparkSession, config: SyntheticConfig, interactions: DataFrame
) -> DataFrame:
    """Rows of users: every id ``1..n_users`` with activity bounds and count from
    ``interactions`` (first/last seen NULL and 0 for users without any); demographics NULL.
    """
    activity = interactions.groupBy(Col.USER_ID).agg(
        F.min(Col.EVENT_TS).alias(Col.FIRST_SEEN_TS),
        F.max(Col.EVENT_TS).alias(Col.LAST_SEEN_TS),
        F.count(F.lit(1)).alias(Col.N_INTERACTIONS),
    )
    ids = spark.range(1, config.n_users + 1, numPartitions=_parts(config, config.n_users))
    users = ids.withColumnRenamed("id", Col.USER_ID).join(activity, Col.USER_ID, "left")
    return users.select(
        Col.USER_ID,
        Col.FIRST_SEEN_TS,
        Col.LAST_SEEN_TS,
        F.coalesce(F.col(Col.N_INTERACTIONS), F.lit(0).cast("long")).alias(Col.N_INTERACTIONS),
        F.lit(None).cast("string").alias(Col.GENDER),
        F.lit(None).cast("int").alias(Col.AGE),
        F.lit(None).cast("string").alias(Col.OCCUPATION),
        F.lit(None).cast("string").alias(Col.ZIP_CODE),
    )
