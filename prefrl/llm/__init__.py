"""The LLM adapter: a Hugging Face causal LM as the policy, completions as clips, the same preference loop.

Needs the `llm` extra (`pip install 'prefrl[llm]'`): transformers, TRL, accelerate, tokenizers.
"""
