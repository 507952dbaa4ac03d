-- Organizations (tenants), aircraft, flights, maintenance events.
-- Every tenant table carries org_id; composite foreign keys on (org_id, id)
-- make it impossible for a row to point at another organization's row.

create table dbx_aviation.organizations (
    id uuid primary key default gen_random_uuid(),
    -- the tenant key, identical to id, so every tenant table has the same policy
    org_id uuid generated always as (id) stored,
    name text not null check (length(name) between 1 and 200),
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    kind text not null check (kind in ('airline', 'flight_school', 'drone_operator', 'charter', 'other')),
    status text not null default 'active' check (status in ('active', 'suspended')),
    telemetry_retention_days integer not null default 730 check (telemetry_retention_days between 30 and 36500),
    created_at timestamptz not null default now()
);

create table dbx_aviation.aircraft (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references dbx_aviation.organizations (id),
    registration text not null check (registration ~ '^[A-Z0-9][A-Z0-9-]{1,9}$'),
    manufacturer text not null check (length(manufacturer) between 1 and 100),
    model text not null check (length(model) between 1 and 100),
    serial_number text check (length(serial_number) <= 100),
    status text not null default 'active' check (status in ('active', 'maintenance', 'retired')),
    specs jsonb not null default '{}'::jsonb check (jsonb_typeof(specs) = 'object'),
    manufactured_on date,
    total_flight_hours numeric(12, 2) not null default 0 check (total_flight_hours >= 0),
    version integer not null default 1 check (version >= 1),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    retired_at timestamptz,
    unique (org_id, registration),
    unique (org_id, id)
);
create index aircraft_org_id_idx on dbx_aviation.aircraft (org_id, id);

create table dbx_aviation.flights (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    aircraft_id uuid not null,
    flight_number text not null check (flight_number ~ '^[A-Z0-9]{2,8}$'),
    origin text not null check (origin ~ '^[A-Z]{4}$'),
    destination text not null check (destination ~ '^[A-Z]{4}$'),
    departed_at timestamptz not null,
    arrived_at timestamptz,
    status text not null default 'scheduled'
        check (status in ('scheduled', 'in_flight', 'completed', 'cancelled', 'diverted')),
    metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
    version integer not null default 1 check (version >= 1),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint flights_arrival_after_departure check (arrived_at is null or arrived_at > departed_at),
    constraint flights_completed_has_arrival check (status <> 'completed' or arrived_at is not null),
    unique (org_id, id),
    unique (id, org_id, aircraft_id),
    foreign key (org_id, aircraft_id) references dbx_aviation.aircraft (org_id, id)
);
-- keyset pagination: newest first, per org and per aircraft
create index flights_org_departed_idx on dbx_aviation.flights (org_id, departed_at desc, id desc);
create index flights_aircraft_departed_idx
    on dbx_aviation.flights (org_id, aircraft_id, departed_at desc, id desc);

create table dbx_aviation.maintenance_events (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    aircraft_id uuid not null,
    component text not null check (length(component) between 1 and 200),
    kind text not null check (kind in ('inspection', 'repair', 'replacement')),
    performed_at timestamptz not null,
    findings text check (length(findings) <= 10000),
    aircraft_hours numeric(12, 2) check (aircraft_hours >= 0),
    recorded_by text,
    created_at timestamptz not null default now(),
    unique (org_id, id),
    foreign key (org_id, aircraft_id) references dbx_aviation.aircraft (org_id, id)
);
create index maintenance_events_aircraft_idx
    on dbx_aviation.maintenance_events (org_id, aircraft_id, performed_at desc, id desc);

-- Telemetry: the big table. Monthly range partitions created ahead of time by
-- dbx_aviation.ensure_telemetry_partitions (called by `dbx-gateway maintain`).
-- No default partition: a point in a month without a partition is an error
-- (SQLSTATE 23514), never a silent landing somewhere else.
create table dbx_aviation.flight_telemetry (
    flight_id uuid not null,
    recorded_at timestamptz not null,
    org_id uuid not null,
    aircraft_id uuid not null,
    altitude_m double precision check (altitude_m between -500 and 20000),
    airspeed_ms double precision check (airspeed_ms between 0 and 200),
    latitude double precision check (latitude between -90 and 90),
    longitude double precision check (longitude between -180 and 180),
    heading_deg double precision check (heading_deg >= 0 and heading_deg <= 360),
    vertical_speed_ms double precision check (vertical_speed_ms between -200 and 200),
    engine_temp_c double precision check (engine_temp_c between -100 and 1500),
    fuel_flow_kg_h double precision check (fuel_flow_kg_h between 0 and 50000),
    primary key (flight_id, recorded_at),
    foreign key (flight_id, org_id, aircraft_id) references dbx_aviation.flights (id, org_id, aircraft_id)
) partition by range (recorded_at);
create index flight_telemetry_aircraft_idx on dbx_aviation.flight_telemetry (aircraft_id, recorded_at);

-- One row per ingest batch: telemetry is too big to audit row by row.
create table dbx_aviation.telemetry_ingest_batches (
    id bigint generated always as identity primary key,
    org_id uuid not null,
    flight_id uuid not null,
    accepted integer not null check (accepted >= 0),
    duplicates integer not null check (duplicates >= 0),
    rejected integer not null check (rejected >= 0),
    source text not null check (source in ('graphql', 'ndjson', 'seed')),
    user_id text,
    created_at timestamptz not null default now(),
    foreign key (org_id, flight_id) references dbx_aviation.flights (org_id, id)
);
create index telemetry_ingest_batches_flight_idx
    on dbx_aviation.telemetry_ingest_batches (org_id, flight_id);
