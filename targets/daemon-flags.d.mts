export declare const DAEMON_NODE_FLAGS: string[];
