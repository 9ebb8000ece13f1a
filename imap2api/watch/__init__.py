"""Push: every active server watched continuously (NOTIFY, IDLE, STATUS polling); see manager.py."""
