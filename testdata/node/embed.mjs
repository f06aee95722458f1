// Embeds the texts given as JSON in argv[2] through the official OpenAI
// Node SDK against EMBEDPIPE_URL (an embedpipe serve --http), and prints
// {"float": [[...]], "base64": [[...]], "dims": [[...]], "error": {...}} on
// stdout: the SDK's default (base64, decoded by the SDK), explicit float,
// dimensions 8, and the error an oversized request raises.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.EMBEDPIPE_URL + "/v1", apiKey: process.env.EMBEDPIPE_KEY, maxRetries: 0 });
const input = JSON.parse(process.argv[2]);
const vecs = (r) => r.data.sort((a, b) => a.index - b.index).map((d) => Array.from(d.embedding));
const out = {};
out.base64 = vecs(await client.embeddings.create({ model: "tiny-bert", input }));
out.float = vecs(await client.embeddings.create({ model: "tiny-bert", input, encoding_format: "float" }));
out.dims = vecs(await client.embeddings.create({ model: "tiny-bert", input, dimensions: 8 }));
try {
  await client.embeddings.create({ model: "tiny-bert", input: [] });
} catch (e) {
  out.error = { status: e.status, type: e.type, message: e.message };
}
process.stdout.write(JSON.stringify(out));
