-- A fact restated while it is still the slot's current value ("I live in Lisbon" in January
-- and again in February) is not a new fact: it joins the run of its predecessor. The row is
-- kept (so a later-processed statement that falls between them can split the run again,
-- whatever the processing order) but points at the run's first row and is hidden from reads.
ALTER TABLE relations ADD COLUMN merged_into INTEGER;
