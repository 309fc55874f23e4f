from datetime import date

from aggregator.batch import frequency_window, release_allowed_from


def test_data_age_counts_whole_months_after_the_period():
    assert release_allowed_from("2025-03", 0) == date(2025, 4, 1)
    assert release_allowed_from("2025-03", 3) == date(2025, 7, 1)
    assert release_allowed_from("2025-03", 12) == date(2026, 4, 1)
    assert release_allowed_from("2025-12", 1) == date(2026, 2, 1)


def test_frequency_windows():
    assert frequency_window("2025-02", "monthly") == "2025-02"
    assert frequency_window("2025-02", "quarterly") == frequency_window("2025-03", "quarterly") == "2025-Q1"
    assert frequency_window("2025-04", "quarterly") == "2025-Q2"
    assert frequency_window("2025-11", "yearly") == "2025"
