"""The sleep diary (issue 9): a night's entry, the check-in's rules, insights and the chart.

Pure domain code: no Telegram, no database, no clock. Handlers, the store and the dispatcher
call these functions with plain values, so every rule here is tested on its own.
"""
