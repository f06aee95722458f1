// Reads the embedding column of the Parquet file argv[2] (width argv[3])
// the way the README tells DuckDB and LanceDB users to, and prints
// {"duckdb_type": ..., "duckdb": [[...] | null, ...], "lancedb": [...]}:
// DuckDB's type for the column as stored, the rows DuckDB gives with the
// ::FLOAT[dim] cast (in file order), and the rows read back from a LanceDB
// table made from them with a fixed_size_list vector column. Test-only.
import { DuckDBInstance } from "@duckdb/node-api";
import * as lancedb from "@lancedb/lancedb";
import { Schema, Field, FixedSizeList, Float32, Int32, Utf8 } from "apache-arrow";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const path = process.argv[2];
const dim = Number(process.argv[3]);
const lit = (s) => "'" + s.replaceAll("'", "''") + "'";
const src = `read_parquet(${lit(path)}, file_row_number = true)`;

const duck = await (await DuckDBInstance.create(":memory:")).connect();
const typ = (await duck.runAndReadAll(`SELECT typeof(embedding) AS t FROM ${src} LIMIT 1`)).getRowObjectsJson()[0].t;
const rows = (await duck.runAndReadAll(`SELECT text, embedding::FLOAT[${dim}] AS embedding FROM ${src} ORDER BY file_row_number`)).getRowObjectsJson();

const dir = mkdtempSync(join(tmpdir(), "embedpipe-lance-"));
try {
  const db = await lancedb.connect(dir);
  const schema = new Schema([
    new Field("row", new Int32(), false),
    new Field("text", new Utf8(), true),
    new Field("embedding", new FixedSizeList(dim, new Field("item", new Float32(), true)), true),
  ]);
  const tbl = await db.createTable("t", rows.map((r, i) => ({ row: i, text: r.text, embedding: r.embedding })), { schema });
  const back = (await tbl.query().toArray()).sort((a, b) => a.row - b.row);
  process.stdout.write(JSON.stringify({
    duckdb_type: typ,
    duckdb: rows.map((r) => r.embedding),
    lancedb: back.map((r) => (r.embedding == null ? null : Array.from(r.embedding))),
  }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
