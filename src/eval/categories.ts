// The SELMA3D structure types and categories now live in src/dataset/ (with the case-name rules); re-exported
// here for the evaluation code that imports them from this file.
export * from "../dataset/taxonomy.ts";
