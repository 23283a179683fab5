-- A phone number is verified by one user at a time: an SMS reply from a
-- number acts as the user who verified it, so two users holding the same
-- verified number would make a reply act for whichever came first. Where
-- that already happened, the oldest method keeps its verification (it is
-- the one replies acted for until now) and the others must verify again,
-- which only whoever holds the phone can do.
UPDATE contact_methods SET verified = FALSE
WHERE verified AND type IN ('SMS', 'VOICE')
	AND EXISTS (
		SELECT 1 FROM contact_methods AS older
		WHERE older.type = contact_methods.type AND older.value = contact_methods.value
			AND older.verified AND older.id < contact_methods.id
	);

CREATE UNIQUE INDEX contact_methods_verified_number ON contact_methods (type, value)
	WHERE verified AND type IN ('SMS', 'VOICE');
