package fstab

import "strings"

// escaper is libmount's (and cloud-init's escape_fstab_field) octal
// escaping of what would split or end a field; backslash first, so the
// escapes it adds are not escaped again.
var escaper = strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)

// Escape writes s as an fstab field: the inverse of UnescapeOctal for
// blanks, newlines and backslashes.
func Escape(s string) string { return escaper.Replace(s) }
