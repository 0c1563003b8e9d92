"""Distributed batch scoring: embeddings, retrieval, ranking, explanations, publishing."""
