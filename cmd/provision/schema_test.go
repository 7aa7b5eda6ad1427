package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/cloudinit"
)

func TestSchemaCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"schema"}, &out, &errOut); code != exitOK {
		t.Fatalf("provision schema: exit %d\n%s", code, errOut.String())
	}
	if !bytes.Equal(out.Bytes(), cloudinit.Schema()) {
		t.Error("provision schema does not print cloudinit.Schema()")
	}
	var doc map[string]any
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Errorf("$schema is %v", doc["$schema"])
	}
	props, _ := doc["properties"].(map[string]any)
	for _, k := range []string{"users", "write_files", "packages", "runcmd", "ssh_authorized_keys"} {
		if props[k] == nil {
			t.Errorf("the schema lacks %s", k)
		}
	}
}

func TestSchemaCommandUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"schema", "--help"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "provision schema") {
		t.Errorf("schema --help: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"schema", "extra"}, &out, &errOut); code != exitInvalid || out.Len() != 0 {
		t.Errorf("schema extra: exit %d, printed %d bytes; want exit 2 and nothing", code, out.Len())
	}
}
