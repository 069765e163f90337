-- Schema 005: placeholder, filled by the work in progress (see docs/).
SELECT 1;
