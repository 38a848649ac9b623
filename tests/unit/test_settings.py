import pytest

from cephaloinit.settings import Settings, load


def test_defaults_when_nothing_is_set():
    settings, warnings = load({})
    assert settings == Settings(squid_port=3128, health_port=8080, log_level="INFO",
                                log_format="text", shutdown_timeout=30.0)
    assert warnings == []


def test_empty_values_mean_the_default():
    settings, warnings = load({"SQUID_PORT": "", "LOG_LEVEL": ""})
    assert settings == Settings()
    assert warnings == []


@pytest.mark.parametrize("variable, text, field, value", [
    ("SQUID_PORT", "3129", "squid_port", 3129),
    ("SQUID_PORT", "1", "squid_port", 1),
    ("HEALTH_PORT", "65535", "health_port", 65535),
    ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
    ("LOG_LEVEL", "WARN", "log_level", "WARNING"),
    ("LOG_LEVEL", "WARNING", "log_level", "WARNING"),
    ("LOG_LEVEL", "ERROR", "log_level", "ERROR"),
    ("LOG_FORMAT", "JSON", "log_format", "json"),
    ("LOG_FORMAT", "text", "log_format", "text"),
    ("SHUTDOWN_TIMEOUT", "5", "shutdown_timeout", 5.0),
    ("SHUTDOWN_TIMEOUT", "0.25", "shutdown_timeout", 0.25),
])
def test_valid_values_are_used(variable, text, field, value):
    settings, warnings = load({variable: text})
    assert getattr(settings, field) == value
    assert warnings == []


@pytest.mark.parametrize("variable, text, expected, default", [
    ("SQUID_PORT", "0", "a port number 1-65535", "3128"),
    ("SQUID_PORT", "65536", "a port number 1-65535", "3128"),
    ("SQUID_PORT", "http", "a port number 1-65535", "3128"),
    ("HEALTH_PORT", "-1", "a port number 1-65535", "8080"),
    ("LOG_LEVEL", "TRACE", "DEBUG, INFO, WARNING, WARN or ERROR", "INFO"),
    ("LOG_FORMAT", "xml", "text or json", "text"),
    ("SHUTDOWN_TIMEOUT", "0", "a number of seconds > 0", "30"),
    ("SHUTDOWN_TIMEOUT", "-3", "a number of seconds > 0", "30"),
    ("SHUTDOWN_TIMEOUT", "nan", "a number of seconds > 0", "30"),
    ("SHUTDOWN_TIMEOUT", "inf", "a number of seconds > 0", "30"),
    ("SHUTDOWN_TIMEOUT", "soon", "a number of seconds > 0", "30"),
])
def test_invalid_values_give_one_warning_naming_the_variable_and_default(variable, text, expected, default):
    settings, warnings = load({variable: text})
    assert settings == Settings()
    assert warnings == [f"Invalid {variable}={text!r}: expected {expected}; using the default {default}"]


def test_each_invalid_variable_gets_its_own_warning():
    settings, warnings = load({"SQUID_PORT": "x", "LOG_FORMAT": "y", "HEALTH_PORT": "9090"})
    assert settings.health_port == 9090
    assert len(warnings) == 2
