-- Retrieval candidates: for a seeded sample of users (jobs.score retrieve-rank --candidates-sample;
-- every user with the two-step `retrieve` command), the top-K unseen items of each candidate
-- source, merged (an item from several sources keeps its best source). Read by no job: the fused
-- scoring step ranks the candidates without writing them. A rerun replaces the day in one commit.
CREATE TABLE IF NOT EXISTS serve.candidates (
  user_id          BIGINT  NOT NULL COMMENT 'Raw user id',
  item_id          BIGINT  NOT NULL COMMENT 'Candidate item id, never one the user already interacted with',
  retrieval_score  FLOAT   NOT NULL COMMENT 'Score from its source (cosine for two_tower, logit for sasrec, popularity for fallbacks)',
  candidate_rank   INT     NOT NULL COMMENT 'Rank 1..K of the item within its source for this user',
  source           STRING  NOT NULL COMMENT 'Candidate source: two_tower, sasrec, trending or popular_genre',
  model_version    STRING  NOT NULL COMMENT 'Artifact version(s) that produced the candidates',
  run_id           STRING  NOT NULL COMMENT 'Scoring run id',
  ds               DATE    NOT NULL COMMENT 'Scoring date (partition)'
)
USING DELTA
PARTITIONED BY (ds)
COMMENT 'Top-K retrieval candidates per user and source'
