// tests/hf_encode.js: the reference encoder, Hugging Face's tokenizers library (Node bindings).
//   node hf_encode.js NODE_MODULES_DIR tokenizer.json TEXT (--doc-sep S | --lines | --whole)
// prints each document's ids as a line (as kd tokenize does, the documents cut the same way) and, on standard
// error, the time encode took over all documents, one call each (HF_ENCODE_BATCH=N: encodeBatch calls of N
// documents), not counting loading the tokenizer.
const path = require("path");
const fs = require("fs");
const [modules, tokFile, textFile, mode, sep] = process.argv.slice(2);
const { Tokenizer } = require(path.join(modules, "@anush008/tokenizers"));

function documents(text) {
  if (mode === "--whole") return text.length ? [text] : [];
  const lines = text.split("\n");
  if (mode === "--lines") {
    if (lines.length && lines[lines.length - 1] === "") lines.pop(); // the file's final newline ends a line
    return lines;
  }
  // --doc-sep: lines that are exactly the separator cut documents; a document keeps its lines' newlines
  const docs = [];
  let cur = [];
  for (let i = 0; i < lines.length; i++) {
    const last = i === lines.length - 1;
    if (lines[i] === sep && !last) {
      if (cur.length) docs.push(cur.join(""));
      cur = [];
    } else if (lines[i] === sep && last) {
      if (cur.length) docs.push(cur.join(""));
      cur = [];
    } else {
      cur.push(last ? lines[i] : lines[i] + "\n");
    }
  }
  if (cur.length && cur.join("").length) docs.push(cur.join(""));
  return docs;
}

(async () => {
  const tok = Tokenizer.fromFile(tokFile);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(fs.readFileSync(textFile));
  const docs = documents(text);
  const out = [];
  const t0 = process.hrtime.bigint();
  const batch = Number(process.env.HF_ENCODE_BATCH || 0); // > 0: encodeBatch over that many documents a call
  if (batch > 0) {
    for (let i = 0; i < docs.length; i += batch) {
      const encs = await tok.encodeBatch(docs.slice(i, i + batch), { addSpecialTokens: false });
      for (const enc of encs) out.push(enc.getIds().join(" "));
    }
  } else {
    for (const d of docs) {
      const enc = await tok.encode(d, null, { addSpecialTokens: false });
      out.push(enc.getIds().join(" "));
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
  const bytes = Buffer.byteLength(docs.join(""), "utf8");
  const how = batch > 0 ? `encodeBatch of ${batch} documents` : "encode per document";
  process.stderr.write(`hf_encode: ${docs.length} documents, ${bytes} bytes in ${secs.toFixed(3)} s, ${how} ` +
                       `(${(bytes / 1e6 / secs).toFixed(2)} MB/s)\n`);
})().catch((err) => { process.stderr.write(`hf_encode: ${err}\n`); process.exit(1); });
