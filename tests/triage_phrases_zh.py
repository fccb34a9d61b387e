"""Chinese phrases for the triage tests: what people might type to a sleep bot in Chinese.

Crisis patterns are shared by every language's safety.toml (crisis must be caught whatever the
person's language setting), so these are checked against each of them. Chinese patterns are
literal and match anywhere in the text, so the look-alikes here are everyday phrases around
sleep, pills and tiredness that must stay clear of the crisis reply.
"""

from __future__ import annotations

from typing import Final

ZH_CRISIS_PHRASES: Final[tuple[str, ...]] = (
    "我想死",
    "真的好想死",
    "我不想活了",
    "我不想再活下去了",
    "活着没意思",
    "活着有什么意思呢",
    "感觉活着好累",
    "我想结束自己的生命",
    "有时候想轻生",
    "我有时候想自杀",
    "最近总想自残",
    "我又割腕了",
    "我想从楼上跳下去",
    "我要跳楼",
    "我攒了一瓶安眠药",
    "我想吃一整瓶安眠药",
    "吃多少安眠药会死",
    "我活不下去了",
    "我没有活下去的理由",
    "大家没有我会更好",
    "我不想醒来了",
    "希望睡着了就再也不醒",
    "我是家里的累赘",
    "没人在乎我死不死",
    "我已经绝望了",
    "我真的撑不下去了",
    "想一了百了",
    "我写好遗书了",
    "这是我的遗言",
    "我想离开这个世界",
    "我想消失",
    "想上吊",
    "想烧炭",
    "我在想怎么死比较不痛苦",
    "有什么死法不痛苦",
    "我活够了",
    "我不想存在了",
    "我想伤害自己",
    "我想杀了自己",
    "我恨我自己",
    "我一无是处",
    "结束这一切吧",
    "想死，但又怕疼",
    "我 想 死",
    "我想死。。。",
    "想死😭😭",
    "honestly 不想活了",
    "我不想活了 how much B12 should I take",
    # traditional characters
    "我想自殺",
    "活著沒意義",
    "我想結束這一切",
)

ZH_NOT_CRISIS: Final[tuple[str, ...]] = (
    "困死了",
    "累死了",
    "笑死我了",
    "吓死我了",
    "热死了",
    "饿死了",
    "死活睡不着",
    "我要被工作累死了",
    "我每天晚上吃安眠药，可以和B12一起吃吗",
    "吃安眠药会上瘾吗",
    "安眠药和褪黑素哪个好",
    "过量补充维生素B12有害吗",
    "褪黑素吃多了会怎样",
    "睡不着怎么办",
    "我想睡觉",
    "夜班太累了",
    "我老公打呼噜很响",
    "我对未来有点迷茫",
    "不睡觉会死吗",
    "老人失眠怎么办",
    "晚上几点睡最好",
    "手机放在卧室会影响睡眠吗",
)
