"""Reward models behind one interface (`RewardModel`) and their trainer."""
