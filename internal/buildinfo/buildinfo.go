package buildinfo

import "runtime/debug"

// Version returns the module version ("(devel)" for a build from a work
// tree) and the commit ("unknown" when not stamped), with " (modified)"
// appended for a dirty tree.
func Version() (version, commit string) {
	version, commit = "(devel)", "unknown"
	modified := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		commit += " (modified)"
	}
	return version, commit
}

// String is Version as one word pair: "VERSION COMMIT".
func String() string {
	v, c := Version()
	return v + " " + c
}
