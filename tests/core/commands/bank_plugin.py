"""A small bank domain used by the command-bus tests (loaded as a plugin file from disk).

``interloper``, when a test sets it, runs inside the handler: it plays another writer
appending to the same stream between the bus's read and its append.
"""

import os

from core.api import Field, Projection, Rejected, command, evolver, handles, upcaster
from core.events import NewEvent
from core.store import SqlEventStore

interloper = None


@evolver("account", initial=lambda: {"opened": False, "balance": 0})
def evolve(state, event):
    if event.type == "Opened":
        return {**state, "opened": True}
    if event.type == "Deposited":
        return {**state, "balance": state["balance"] + event.data["amount"]}
    if event.type == "Withdrawn":
        return {**state, "balance": state["balance"] - event.data["amount"]}
    return state


def _interfere(data):
    if interloper is not None:
        interloper(data)
    path = os.environ.get("BANK_ALWAYS_CONFLICT")
    if path:
        store = SqlEventStore.open(path)
        store.append_to_stream(f"account-{data['account']}", [NewEvent("Noted", {})])
        store.close()


@command("Open", stream="account-{account}", fields={"account": str})
def open_account(state, data):
    """Open an account."""
    if state["opened"]:
        raise Rejected("the account is already open")
    return [("Opened", {"account": data["account"]})]


@command(
    "Deposit",
    stream="account-{account}",
    fields={"account": str, "amount": Field(int, help="in cents")},
)
def deposit(state, data):
    """Put money in."""
    _interfere(data)
    if not state["opened"]:
        raise Rejected("no such account")
    if data["amount"] <= 0:
        raise Rejected("amount must be positive")
    return [("Deposited", {"account": data["account"], "amount": data["amount"]})]


@command("Withdraw", stream="account-{account}", fields={"account": str, "amount": int})
def withdraw(state, data):
    """Take money out, never below zero."""
    _interfere(data)
    if data["amount"] > state["balance"]:
        raise Rejected(f"insufficient funds: balance {state['balance']}")
    return [
        ("Withdrawn", {"account": data["account"], "amount": data["amount"]}),
        ("BalanceChecked", {"balance": state["balance"] - data["amount"]}),
    ]


@upcaster("Deposited", from_version=1)
def amount_was_amt(data):
    return {"account": data["account"], "amount": data.pop("amt")}


class Balances(Projection):
    name = "balances"

    @handles("Deposited")
    def deposited(self, view, event):
        doc = view.get(event.data["account"]) or {"balance": 0}
        doc["balance"] += event.data["amount"]
        view.put(event.data["account"], doc)

    @handles("Withdrawn")
    def withdrawn(self, view, event):
        doc = view.get(event.data["account"]) or {"balance": 0}
        doc["balance"] -= event.data["amount"]
        view.put(event.data["account"], doc)


class BalancesInEuros(Balances):
    name = "balances"
    version = 2

    @handles("Deposited", "Withdrawn")
    def changed(self, view, event):
        sign = 1 if event.type == "Deposited" else -1
        doc = view.get(event.data["account"]) or {"euros": 0.0}
        doc["euros"] = round(doc["euros"] + sign * event.data["amount"] / 100, 2)
        view.put(event.data["account"], doc)


class DepositCount(Projection):
    """Counts deposits per account; it never reads the amount."""

    name = "deposit_count"

    @handles("Deposited")
    def deposited(self, view, event):
        doc = view.get(event.data["account"]) or {"deposits": 0}
        doc["deposits"] += 1
        view.put(event.data["account"], doc)
