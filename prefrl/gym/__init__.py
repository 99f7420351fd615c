"""The Gymnasium side: environments, vectorisation, the reward wrapper, Atari, rendering, the agent, evaluation."""
