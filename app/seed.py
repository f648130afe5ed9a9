"""Demo data: varied customers (Chinese and Western names, several countries, tags, consent, attributes).

Written through the customer service, so the demo data also has its events.
"""

import contextlib
import random
from typing import Any

from app.core.auth import Caller
from app.core.ids import new_id
from app.customers import batch
from app.customers.schemas import CustomerBatch, normalize_phone
from app.db import unit_of_work

CHINESE_SURNAMES = [
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
]
CHINESE_GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "艳",
    "勇",
    "杰",
    "婷",
    "晨",
]
WESTERN_FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Lena",
    "Marco",
    "Nora",
    "Oscar",
    "Paula",
    "Sofia",
    "Tom",
    "Yara",
]
WESTERN_LAST = [
    "Müller",
    "Smith",
    "Rossi",
    "García",
    "Dubois",
    "Schmidt",
    "Johnson",
    "Bianchi",
    "Martin",
    "Fischer",
    "Brown",
    "López",
    "Weber",
    "Moreau",
]
PLACES = {
    "CN": [
        ("Shanghai", "Shanghai"),
        ("Beijing", "Beijing"),
        ("Guangdong", "Shenzhen"),
        ("Zhejiang", "Hangzhou"),
        ("Sichuan", "Chengdu"),
    ],
    "DE": [("Berlin", "Berlin"), ("Bayern", "München"), ("Hamburg", "Hamburg")],
    "US": [("California", "San Francisco"), ("New York", "New York"), ("Texas", "Austin")],
    "GB": [("England", "London"), ("Scotland", "Edinburgh")],
    "FR": [("Île-de-France", "Paris"), ("Auvergne-Rhône-Alpes", "Lyon")],
    "IT": [("Lombardia", "Milano"), ("Lazio", "Roma")],
    "ES": [("Madrid", "Madrid"), ("Cataluña", "Barcelona")],
}
PHONE_PREFIX = {
    "CN": "+86138",
    "DE": "+4915",
    "US": "+1415555",
    "GB": "+447700",
    "FR": "+336",
    "IT": "+39347",
    "ES": "+34612",
}
PHONE_DIGITS = {"CN": 8, "DE": 9, "US": 4, "GB": 6, "FR": 8, "IT": 7, "ES": 6}
TAGS = [
    "outdoor",
    "tech",
    "fashion",
    "family",
    "fitness",
    "travel",
    "foodie",
    "gamer",
    "eco",
    "luxury",
    "bargain-hunter",
    "pet-owner",
    "reader",
    "music",
]
CHANNELS = ["web", "app", "store", "wechat", "referral", "marketplace"]
EDUCATION = ["secondary", "vocational", "bachelor", "master", "doctorate"]
INCOME = ["low", "lower_middle", "middle", "upper_middle", "high"]
OCCUPATIONS = ["engineer", "teacher", "designer", "nurse", "student", "manager", "chef", "lawyer"]


def demo_customer(rng: random.Random, index: int) -> dict[str, Any]:
    country = rng.choice(list(PLACES))
    region, city = rng.choice(PLACES[country])
    if country == "CN":
        last, first = rng.choice(CHINESE_SURNAMES), rng.choice(CHINESE_GIVEN)
        local = f"user{index}"
        locale = "zh-CN"
    else:
        first, last = rng.choice(WESTERN_FIRST), rng.choice(WESTERN_LAST)
        local = f"{first}.{last}{index}".lower()
        locale = {
            "DE": "de-DE",
            "US": "en-US",
            "GB": "en-GB",
            "FR": "fr-FR",
            "IT": "it-IT",
            "ES": "es-ES",
        }[country]
    digits = "".join(rng.choice("0123456789") for _ in range(PHONE_DIGITS[country]))
    body: dict[str, Any] = {
        "external_id": f"demo-{index:05d}",
        "email": f"{local}@example.com".encode("ascii", "ignore").decode(),
        "first_name": first,
        "last_name": last,
        "gender": rng.choice(["female", "male", "female", "male", "non_binary", "unknown"]),
        "birth_date": f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "locale": locale,
        "country": country,
        "region": region,
        "city": city,
        "income_band": rng.choice(INCOME),
        "education": rng.choice(EDUCATION),
        "occupation": rng.choice(OCCUPATIONS),
        "tags": rng.sample(TAGS, rng.randint(0, 4)),
        "attributes": {
            "favorite_category": rng.choice(
                ["shoes", "outerwear", "electronics", "home", "beauty"]
            ),
            "newsletter_since": rng.randint(2015, 2026),
            "vip": rng.random() < 0.1,
        },
        "consent": [
            {
                "channel": "email",
                "purpose": "marketing",
                "status": "granted" if rng.random() < 0.6 else "denied",
                "source": "signup",
            },
            {"channel": "sms", "purpose": "service", "status": "granted", "source": "signup"},
        ],
        "source_channel": rng.choice(CHANNELS),
    }
    # A random number that is not a valid one leaves the demo customer without a phone.
    if rng.random() < 0.85:
        with contextlib.suppress(ValueError):
            body["phone"] = normalize_phone(PHONE_PREFIX[country] + digits, country)
    return body


async def seed_demo(count: int = 1000, seed: int = 2026) -> int:
    """Upsert ``count`` demo customers (idempotent: keyed by external_id)."""
    rng = random.Random(seed)
    caller = Caller(key_id=new_id(), name="seed", scopes=frozenset({"admin"}))
    written = 0
    for start in range(0, count, 500):
        items = [demo_customer(rng, i) for i in range(start, min(count, start + 500))]
        async with unit_of_work() as conn:
            result = await batch.batch_upsert(conn, caller, CustomerBatch(items=items))
        written += result.created + result.updated + result.unchanged
    return written
