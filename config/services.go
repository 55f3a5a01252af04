package config

import "encoding/json"

// Audit configures the audit log and recovery journal (docs/audit-format.md).
type Audit struct {
	// Durability is "write" (the default: a record is handed to the
	// operating system before the acknowledgement it causes is released,
	// which survives a crash of the process) or "fsync" (on disk, with group
	// commit: survives a crash of the machine).
	Durability string
	// PostgresDSNFile names a file (mode 0600) holding the connection string
	// of the PostgreSQL mirror's application role (docs/audit-postgres.md);
	// empty: no mirror unless $TRADECORE_AUDIT_PG_DSN is set.
	PostgresDSNFile string
}

// Netseg configures eBPF network segmentation at daemon start
// (docs/netseg.md).
type Netseg struct {
	// Policy is a policy file applied at start; empty keeps the policy
	// already pinned (applied with `tradecore netseg apply`).
	Policy string
	// Required refuses to start the daemon when segmentation cannot be
	// enforced (no root, no BPF, no policy in force). Default true; false
	// is logged as a warning at start.
	Required bool
}

type auditJSON struct {
	Durability      json.RawMessage `json:"durability"`
	PostgresDSNFile json.RawMessage `json:"postgres_dsn_file"`
}

const auditFields = "durability, postgres_dsn_file"

type netsegJSON struct {
	Policy   json.RawMessage `json:"policy"`
	Required json.RawMessage `json:"required"`
}

const netsegFields = "policy, required"

func parseAudit(raw json.RawMessage, a *Audit) error {
	*a = Audit{Durability: "write"}
	if absent(raw) {
		return nil
	}
	var aj auditJSON
	if err := decodeObject(raw, "audit", auditFields, &aj); err != nil {
		return err
	}
	s, ok, err := decodeString(aj.Durability, "audit.durability")
	switch {
	case err != nil:
		return err
	case !ok || s == "":
	case s == "write" || s == "fsync":
		a.Durability = s
	default:
		return invalid("audit.durability", "%q is not a durability level; use \"write\" (the default) or \"fsync\"", truncate(s))
	}
	if a.PostgresDSNFile, _, err = decodeString(aj.PostgresDSNFile, "audit.postgres_dsn_file"); err != nil {
		return err
	}
	return nil
}

func parseNetseg(raw json.RawMessage, n *Netseg) error {
	*n = Netseg{Required: true}
	if absent(raw) {
		return nil
	}
	var nj netsegJSON
	if err := decodeObject(raw, "netseg", netsegFields, &nj); err != nil {
		return err
	}
	s, _, err := decodeString(nj.Policy, "netseg.policy")
	if err != nil {
		return err
	}
	n.Policy = s
	if !absent(nj.Required) {
		if n.Required, err = decodeBool(nj.Required, "netseg.required"); err != nil {
			return err
		}
	}
	return nil
}
