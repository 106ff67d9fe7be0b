"""The server's garbage-collector tuning: thresholds from settings, start-up objects frozen."""

import gc

import pytest
from django.core.exceptions import ImproperlyConfigured

from tradeapp.gc_tuning import gc_thresholds, tune_gc


@pytest.fixture
def restore_gc():
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_tune_gc_applies_the_thresholds_and_freezes_startup_objects(settings, restore_gc):
    settings.SERVER_GC_THRESHOLDS = ["12345", "6", "7"]
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == (12345, 6, 7)
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("bad", [["1", "2"], ["a", "b", "c"], ["0", "10", "10"], []])
def test_bad_thresholds_are_refused_clearly(settings, bad):
    settings.SERVER_GC_THRESHOLDS = bad
    with pytest.raises(ImproperlyConfigured, match="SERVER_GC_THRESHOLDS"):
        gc_thresholds()
