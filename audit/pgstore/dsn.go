package pgstore

import (
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Environment variables that LoadDSN's callers in cmd/tradecore read.
const (
	// EnvDSN holds the application role's connection string.
	EnvDSN = "TRADECORE_AUDIT_PG_DSN"
	// EnvOwnerDSN holds the owner role's connection string (migrations, retention).
	EnvOwnerDSN = "TRADECORE_AUDIT_PG_OWNER_DSN"
)

// LoadDSN returns a PostgreSQL connection string from the file at path, or,
// when path is empty, from the environment variable env. Connection strings
// never come from the command line, where other users see them. A file must
// be a regular file that only its owner can read or write (chmod 600). The
// string may also leave the password to a passfile (PGPASSFILE,
// ~/.pgpass). Errors never quote the string, which may hold a password.
func LoadDSN(path, env string) (string, error) {
	var dsn, from string
	switch {
	case path != "":
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrDSN, err)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("%w: %s is not a regular file", ErrDSN, path)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%w: %s is readable or writable by others (mode %04o): chmod 600 %s", ErrDSN, path, fi.Mode().Perm(), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrDSN, err)
		}
		dsn, from = strings.TrimSpace(string(b)), path
	case env != "":
		dsn, from = strings.TrimSpace(os.Getenv(env)), "$"+env
		if dsn == "" {
			return "", fmt.Errorf("%w: none given: set %s or pass --dsn-file with a file holding it", ErrDSN, env)
		}
	default:
		return "", fmt.Errorf("%w: none given: pass --dsn-file", ErrDSN)
	}
	if dsn == "" {
		return "", fmt.Errorf("%w: %s is empty: write the connection string into it", ErrDSN, from)
	}
	if _, err := pgx.ParseConfig(dsn); err != nil {
		// pgx redacts passwords only on a best-effort basis: say nothing of the text.
		return "", fmt.Errorf("%w: the connection string in %s does not parse (its text is not shown, it may hold a password): check its syntax against the libpq keyword/value or URI form", ErrDSN, from)
	}
	return dsn, nil
}

// describe names where a connection goes without its password, for logs.
func describe(cc *pgx.ConnConfig) string {
	return fmt.Sprintf("user=%s database=%s host=%s port=%d", cc.User, cc.Database, cc.Host, cc.Port)
}
