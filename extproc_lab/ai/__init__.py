"""The prompt-injection model: training on real prompts (../shared/data/llm) and evaluation with
whole sources held out."""
