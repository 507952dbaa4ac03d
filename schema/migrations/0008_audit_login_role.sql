-- The audit trigger runs as its owner (SECURITY DEFINER), so current_user
-- inside it is always the owner; session_user is the role that logged in.
alter table dbx_audit.audit_log alter column db_role set default session_user;
