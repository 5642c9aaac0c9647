-- +goose Up

-- The release writes its status into its incident more than once (at the breach, as it
-- ends), from activities that may finish in any order: the write with the higher sequence
-- number wins, so a late breach-time write never replaces the final status.
ALTER TABLE incidents ADD COLUMN status_seq bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE incidents DROP COLUMN status_seq;
