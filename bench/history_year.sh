#!/bin/sh
# A full year of history tables at PostgreSQL's real B-tree fill, without the engine (run by hand).
#
#     sh bench/history_year.sh [rule rows per run] [scorecard rows per run] [psql options]
#
# bench/history.py extrapolates a year linearly from a few dozen runs; B-tree leaves that
# receive keys at random first fill the free space the initial load left, then split, so
# that extrapolation depends on how many runs it saw. This builds the two history tables as
# migration 0001 does (schema "year_check", dropped at the end), loads the initial run
# (10,000 services x 100 rules, 5 scorecards), then appends 2,190 runs of rows at random keys
# and prints their size. Rows per run at 5% change, measured by bench/history.py over 120
# runs: 2,222 rule rows and 209 scorecard rows (the defaults).
set -e
RULES=${1:-2222}
CARDS=${2:-209}
shift 2 2>/dev/null || shift $#
psql -q -v ON_ERROR_STOP=1 "$@" <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS year_check CASCADE;
CREATE SCHEMA year_check;
SET search_path = year_check;
CREATE TABLE rule_state (service_id int NOT NULL, rule_id int NOT NULL, valid_from_run int NOT NULL,
    outcome_id int, score smallint NOT NULL, PRIMARY KEY (service_id, rule_id, valid_from_run));
CREATE TABLE scorecard_state (service_id int NOT NULL, scorecard_id int NOT NULL,
    valid_from_run int NOT NULL, version_id int, level_rank smallint NOT NULL,
    score smallint NOT NULL, PRIMARY KEY (service_id, scorecard_id, valid_from_run));
CREATE INDEX ix_scorecard_state_from ON scorecard_state USING brin (valid_from_run);
INSERT INTO rule_state SELECT s, r, 1, r, 8000
    FROM generate_series(1, 10000) s, generate_series(1, 100) r ORDER BY s, r;
INSERT INTO scorecard_state SELECT s, c, 1, c, 2, 8000
    FROM generate_series(1, 10000) s, generate_series(1, 5) c ORDER BY s, c;
DO \$\$ BEGIN FOR run IN 2..2190 LOOP
    INSERT INTO rule_state SELECT 1 + floor(random() * 10000)::int, 1 + floor(random() * 100)::int,
        run, 7, 7000 FROM generate_series(1, $RULES) ON CONFLICT DO NOTHING;
    INSERT INTO scorecard_state SELECT 1 + floor(random() * 10000)::int,
        1 + floor(random() * 5)::int, run, 1, 1, 7000 FROM generate_series(1, $CARDS)
        ON CONFLICT DO NOTHING;
END LOOP; END \$\$;
SELECT relname AS "table", round(pg_total_relation_size(oid) / 1048576.0, 1) AS "MiB after a year"
    FROM pg_class WHERE relname IN ('rule_state', 'scorecard_state')
    AND relnamespace = 'year_check'::regnamespace;
DROP SCHEMA year_check CASCADE;
SQL
