"""The model: the initiative as data (geographies, partners, versioned shared measures), periods,
and the shapes of the frames that pass between stages. Every stage depends on it; it depends on
nothing but ``errors``.
"""
