"""The process identity shared by runner ids and viewer rows."""

import os

from tradeapp import instance


def test_the_id_names_host_and_pid_and_stays_the_same_in_one_process():
    first = instance.process_id()
    assert f":{os.getpid()}:" in first
    assert instance.process_id() == first


def test_a_forked_child_gets_an_id_of_its_own(monkeypatch):
    parent, child_pid = instance.process_id(), os.getpid() + 1
    monkeypatch.setattr(instance.os, "getpid", lambda: child_pid)
    child = instance.process_id()
    assert child != parent
    assert f":{child_pid}:" in child
