-- One database per service: none reads another's tables.
CREATE DATABASE registration;
CREATE DATABASE capacity;
CREATE DATABASE notification;
