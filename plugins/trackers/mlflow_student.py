"""The distilled student as an MLflow pyfunc model ("models from code": MLflow copies this file into
the logged model, so loading it needs mlflow, transformers and torch, not stillhouse).

``mlflow.pyfunc.load_model(uri).predict(["a prompt", ...], params={"max_new_tokens": 64})`` returns
one generated answer per prompt, greedy, through the student's chat template when it has one.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel, PythonModelContext

ARTIFACT = "student"  # the key of the student's transformers folder in the model's artifacts
DEFAULT_MAX_NEW_TOKENS = 64


class StudentModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = context.artifacts[ARTIFACT]
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModelForCausalLM.from_pretrained(folder)
        self.model.eval()

    def predict(self, context: PythonModelContext, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        import torch

        max_new_tokens = int((params or {}).get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        answers: list[str] = []
        for prompt in model_input:
            encoded: Any
            if self.tokenizer.chat_template:
                encoded = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
            else:
                encoded = self.tokenizer(prompt, return_tensors="pt")
            ids: Any = encoded["input_ids"]
            with torch.no_grad():
                out = self.model.generate(
                    ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
                )
            answers.append(str(self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)))
        return answers


mlflow.models.set_model(StudentModel())
