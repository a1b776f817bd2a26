CREATE TABLE "things" (
	id INTEGER NOT NULL,
	name VARCHAR(50) CONSTRAINT uq_name UNIQUE,
	owner_id INTEGER CONSTRAINT fk_owner REFERENCES users (id) ON DELETE CASCADE,
	amount NUMERIC(12, 2) CHECK (amount >= 0),
	CONSTRAINT pk_things PRIMARY KEY (id),
	CONSTRAINT ck_things_x CHECK ((amount > 0) OR name IS NULL)
)