// The version this build reports in records and --version; keep in step with package.json.
export const VERSION = '0.1.0';
export const SOFTWARE = `rcpp2p ${VERSION}`;
