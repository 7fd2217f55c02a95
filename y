 0(1) ERROR: db_cluster [dbcl_data.c:230]: dbcl_parse_con_param(): invalid connection parameter [local=] at [6]
 0(1) CRITICAL: <core> [core/cfg.y:4048]: yyerror_at(): parse error in config file /etc/kamailio/kamailio.cfg, line 230, column 46: Can't set module parameter
