"""Physical constants (SI, CODATA 2018 exact values) used by every physics module."""

FARADAY = 96485.33212  # C/mol
GAS_CONSTANT = 8.314462618  # J/(mol K)
T_REFERENCE = 298.15  # K, the temperature of VERIFICATION.md


def thermal_voltage(temperature: float) -> float:
    """R T / F [V] at ``temperature`` [K]."""
    return GAS_CONSTANT * temperature / FARADAY
