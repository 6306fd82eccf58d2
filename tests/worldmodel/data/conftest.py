import sys
from pathlib import Path

# Shared builders live in wm_data_helpers.py (also run as a subprocess script by the crash tests).
sys.path.insert(0, str(Path(__file__).parent))
