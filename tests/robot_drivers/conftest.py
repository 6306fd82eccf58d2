import sys
from pathlib import Path

# server_process.py (a real robot-server subprocess) is shared by several test files.
sys.path.insert(0, str(Path(__file__).parent))
