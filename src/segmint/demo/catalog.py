"""The demo shop's fixed catalogue: categories, Korean product names, brands and KRW prices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# category -> list of (item, (min price, max price) KRW, consumable?, brands)
CATEGORIES: dict[str, list[tuple[str, tuple[int, int], bool, list[str]]]] = {
    "뷰티": [
        ("수분크림", (18_000, 65_000), False, ["라네즈", "설화수", "이니스프리"]),
        ("선크림", (12_000, 32_000), False, ["닥터자르트", "라운드랩", "이니스프리"]),
        ("클렌징폼", (8_000, 18_000), False, ["이니스프리", "미샤", "순플러스"]),
        ("립스틱", (15_000, 42_000), False, ["롬앤", "헤라", "에뛰드"]),
        ("에센스", (25_000, 95_000), False, ["설화수", "아이오페", "미샤"]),
        ("샴푸", (9_000, 24_000), True, ["려", "닥터포헤어", "아모스"]),
        ("마스크팩 10매", (9_000, 25_000), True, ["메디힐", "아비브", "닥터자르트"]),
    ],
    "패션": [
        ("맨투맨", (19_000, 69_000), False, ["무신사스탠다드", "스파오", "탑텐"]),
        ("청바지", (29_000, 99_000), False, ["리바이스", "스파오", "지오다노"]),
        ("롱패딩", (89_000, 390_000), False, ["노스페이스", "디스커버리", "탑텐"]),
        ("니트", (25_000, 89_000), False, ["에잇세컨즈", "무신사스탠다드", "지오다노"]),
        ("스니커즈", (49_000, 159_000), False, ["컨버스", "반스", "휠라"]),
        ("울 코트", (129_000, 450_000), False, ["에잇세컨즈", "시스템", "타임"]),
        ("양말 5켤레", (7_000, 15_000), True, ["스파오", "탑텐", "무신사스탠다드"]),
    ],
    "식품": [
        ("원두커피 1kg", (18_000, 39_000), True, ["스타벅스", "맥심", "커피빈"]),
        ("생수 2L 12병", (6_000, 12_000), True, ["삼다수", "아이시스", "백산수"]),
        ("라면 5입", (3_500, 7_500), True, ["농심", "오뚜기", "삼양"]),
        ("포기김치 3kg", (19_000, 39_000), False, ["비비고", "종가", "풀무원"]),
        ("하루견과 30봉", (15_000, 32_000), True, ["바프", "산과들에", "정관장"]),
        ("닭가슴살 10팩", (13_000, 25_000), True, ["아임닭", "허닭", "하림"]),
        ("즉석밥 24개", (19_000, 29_000), True, ["햇반", "오뚜기", "풀무원"]),
    ],
    "생활용품": [
        ("세탁세제 3L", (9_000, 22_000), True, ["피지", "퍼실", "테크"]),
        ("화장지 30롤", (14_000, 29_000), True, ["크리넥스", "잘풀리는집", "깨끗한나라"]),
        ("섬유유연제", (7_000, 18_000), True, ["다우니", "피죤", "샤프란"]),
        ("치약 3입", (5_000, 13_000), True, ["페리오", "2080", "메디안"]),
        ("주방세제", (4_000, 11_000), True, ["자연퐁", "트리오", "참그린"]),
        ("수납박스", (9_000, 35_000), False, ["리빙박스", "한샘", "이케아"]),
    ],
    "가전": [
        ("무선청소기", (190_000, 1_190_000), False, ["다이슨", "삼성", "LG"]),
        ("에어프라이어", (59_000, 219_000), False, ["쿠쿠", "필립스", "코스오리"]),
        ("전기밥솥", (89_000, 459_000), False, ["쿠쿠", "쿠첸", "위닉스"]),
        ("공기청정기", (149_000, 890_000), False, ["삼성", "LG", "위닉스"]),
        ("무선 이어폰", (39_000, 359_000), False, ["삼성", "애플", "소니"]),
        ("모니터 27형", (189_000, 690_000), False, ["LG", "삼성", "델"]),
        ("가습기", (39_000, 189_000), False, ["미닉스", "샤오미", "LG"]),
    ],
    "도서": [
        ("장편소설", (13_000, 19_000), False, ["민음사", "문학동네", "창비"]),
        ("에세이", (13_000, 18_000), False, ["위즈덤하우스", "문학동네", "웅진"]),
        ("자기계발서", (14_000, 22_000), False, ["다산북스", "한빛비즈", "위즈덤하우스"]),
        ("경제경영", (16_000, 28_000), False, ["한빛비즈", "다산북스", "부키"]),
        ("웹툰 단행본", (9_000, 16_000), False, ["대원씨아이", "학산문화사", "서울미디어코믹스"]),
        ("수능 참고서", (15_000, 27_000), False, ["EBS", "메가스터디", "비상교육"]),
    ],
    "스포츠": [
        ("요가매트", (15_000, 59_000), False, ["만두카", "젝시믹스", "안다르"]),
        ("러닝화", (79_000, 229_000), False, ["나이키", "아디다스", "뉴발란스"]),
        ("덤벨 세트", (25_000, 129_000), False, ["이고진", "반석스포츠", "데카트론"]),
        ("트레이닝복", (39_000, 149_000), False, ["데상트", "휠라", "아디다스"]),
        ("등산스틱", (29_000, 119_000), False, ["블랙야크", "K2", "코오롱스포츠"]),
        ("프로틴 2kg", (39_000, 79_000), True, ["마이프로틴", "옵티멈", "칼로바이"]),
    ],
    "유아동": [
        ("기저귀 대형", (29_000, 49_000), True, ["하기스", "보솜이", "팸퍼스"]),
        ("분유 800g", (25_000, 45_000), True, ["매일유업", "남양", "일동후디스"]),
        ("물티슈 10팩", (12_000, 24_000), True, ["베베숲", "몽디에스", "순둥이"]),
        ("유모차", (190_000, 990_000), False, ["부가부", "잉글레시나", "리안"]),
        ("블록 장난감", (19_000, 149_000), False, ["레고", "옥스포드", "뽀로로"]),
        ("아동 내복", (15_000, 39_000), False, ["아가방", "모이몰른", "블루독"]),
    ],
}

CATEGORY_NAMES = list(CATEGORIES)
PREMIUM_CATEGORY = "가전"


@dataclass
class Catalog:
    """Products as parallel numpy arrays (index = product number)."""

    product_id: np.ndarray
    name: np.ndarray
    category: np.ndarray  # category index
    brand: np.ndarray
    price: np.ndarray  # KRW int64
    consumable: np.ndarray  # bool
    by_category: list[np.ndarray]  # product indexes per category
    popularity: list[np.ndarray]  # Zipf-like choice weights per category

    def __len__(self) -> int:
        return len(self.product_id)


def build_catalog(seed: int) -> Catalog:
    """The products of the shop; prices drawn deterministically from the seed, ending in 00 or 900."""
    rng = np.random.default_rng([seed, 7])
    pid, name, cat, brand, price, cons = [], [], [], [], [], []
    for ci, items in enumerate(CATEGORIES.values()):
        for ii, (item, (lo, hi), consumable, brands) in enumerate(items):
            for bi, b in enumerate(brands):
                p = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                p = int(round(p / 1000) * 1000 - (100 if p > 5000 else 0))
                pid.append(f"P{ci + 1}{ii + 1:02d}{bi + 1}")
                name.append(f"{b} {item}")
                cat.append(ci)
                brand.append(b)
                price.append(max(p, 1000))
                cons.append(consumable)
    category = np.array(cat)
    by_category = [np.flatnonzero(category == c) for c in range(len(CATEGORIES))]
    popularity = []
    for idx in by_category:
        w = 1.0 / np.arange(1, len(idx) + 1) ** 0.8
        popularity.append(rng.permutation(w / w.sum()))
    return Catalog(
        np.array(pid),
        np.array(name),
        category,
        np.array(brand),
        np.array(price, dtype=np.int64),
        np.array(cons),
        by_category,
        popularity,
    )
